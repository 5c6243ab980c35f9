"""Writer processes for the concurrency and crash tests.

Importable by ``multiprocessing`` spawn children (this directory is on ``sys.path``), and runnable
as a script: ``python store_workers.py STORE ROUND INDEX_URL`` writes batches forever, printing the ids of
each batch only after ``write()`` has returned (so a printed id is an acknowledged, durable one).
"""

from __future__ import annotations

import sys

import numpy as np
from episode_factory import make_episode

from armfarm.data import EpisodeStore

CRASH_BATCH = 3


def write_many(store_path: str, worker: int, count: int, index_url: str) -> None:
    """Write ``count`` episodes one call at a time, creating the store if needed."""
    rng = np.random.default_rng(worker)
    store = EpisodeStore(store_path, create=True, index_url=index_url)
    for i in range(count):
        store.write(
            [
                make_episode(
                    rng,
                    T=int(rng.integers(1, 30)),
                    episode_id=f"w{worker}-{i}",
                    collector_id=f"worker-{worker}",
                )
            ]
        )


def create_in_step(root: str, worker: int, count: int, barrier, failures) -> None:
    """Create stores ``root/0`` .. ``root/count-1`` together with the other workers, one at a time."""
    for i in range(count):
        barrier.wait()
        try:
            EpisodeStore(f"{root}/{i}", create=True)
        except Exception as e:  # noqa: BLE001 - reported to the test, which prints it
            failures.put(f"worker {worker}, store {i}: {e!r}")


def write_shared(store_path: str, worker: int, ids: list[str]) -> None:
    """Write the same ids as other workers, in a worker-specific order, skipping duplicates."""
    rng = np.random.default_rng(worker)
    store = EpisodeStore(store_path)
    for episode_id in rng.permutation(ids):
        store.write([make_episode(rng, T=5, episode_id=str(episode_id))], on_duplicate="skip")


def crash_episode(round_: int, batch: int, j: int):
    """The deterministic content of episode ``j`` of ``batch`` in crash round ``round_``."""
    rng = np.random.default_rng([round_, batch, j])
    return make_episode(rng, T=int(rng.integers(1, 400)), episode_id=f"r{round_}-b{batch}-e{j}", seed=batch)


def crash_loop(store_path: str, round_: int, index_url: str) -> None:
    store = EpisodeStore(store_path, create=True, index_url=index_url)
    batch = 0
    while True:
        episodes = [crash_episode(round_, batch, j) for j in range(CRASH_BATCH)]
        store.write(episodes)
        print(" ".join(ep.episode_id for ep in episodes), flush=True)
        batch += 1


if __name__ == "__main__":
    crash_loop(sys.argv[1], int(sys.argv[2]), sys.argv[3])
