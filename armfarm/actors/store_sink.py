"""A sink that writes episodes into an episode store in durable batches (the one home of batching)."""

from __future__ import annotations

from collections.abc import Callable

from armfarm.actors.actor import RecordedEpisode

FLUSH_EPISODES = 32
FLUSH_TRANSITIONS = 20_000


class StoreSink:
    """Buffers episodes and writes them with one :meth:`EpisodeStore.write` per batch.

    A batch is written once it holds ``flush_episodes`` episodes or ``flush_transitions`` transitions,
    and on :meth:`flush`; ``on_written(episodes)`` is called after each durable write. Episodes are
    validated against the store's spec when written, so a bad one fails its batch with the field named.
    ``on_duplicate="skip"`` drops episodes whose ids the store already holds (a collector redoing work).
    """

    def __init__(self, store, flush_episodes: int = FLUSH_EPISODES, flush_transitions: int = FLUSH_TRANSITIONS,
                 on_written: Callable[[list[RecordedEpisode]], None] | None = None, on_duplicate: str = "error"):
        self.store, self.on_duplicate = store, on_duplicate
        self.flush_episodes, self.flush_transitions = flush_episodes, flush_transitions
        self.on_written = on_written
        self.pending: list[RecordedEpisode] = []

    def put(self, episode: RecordedEpisode) -> None:
        self.pending.append(episode)
        if len(self.pending) >= self.flush_episodes or sum(e.length for e in self.pending) >= self.flush_transitions:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        from armfarm.data import Episode

        self.store.write([Episode(**e.arrays, episode_id=e.episode_id, collector_id=e.collector_id,
                                  policy_id=e.policy_id, env_id=e.env_id, seed=e.seed, created_at=e.created_at,
                                  end_reason=e.end_reason)
                          for e in self.pending], on_duplicate=self.on_duplicate)
        written, self.pending = self.pending, []
        if self.on_written is not None:
            self.on_written(written)

    def __enter__(self) -> StoreSink:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.flush()
