"""From an upload to an acknowledged episode: checks, group commit, idempotent acks.

An upload is decoded (:mod:`armfarm.fleet.payload`), checked against the spaces its robot
registered, and handed to the :class:`GroupCommitter`, whose one thread writes the queued episodes
with ``EpisodeStore.write(..., on_duplicate="skip")``. The ack goes out only after that write has
returned, i.e. after the shard and the index are fsynced: the store is the source of truth.

Retries are idempotent. If an episode id is already stored, the upload is compared with the
stored episode: the same robot resending the same content gets the same ack again; anything else
(another robot's id, or different content under a stored id) is refused with 409 and changes
nothing.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from dataclasses import asdict, dataclass

import numpy as np
from starlette.concurrency import run_in_threadpool

from armfarm.data import DataError, Episode, EpisodeStore
from armfarm.fleet.errors import FleetError
from armfarm.fleet.limits import retry_after_header
from armfarm.fleet.payload import EpisodePayload, PayloadError, assemble, content_digest, decode, wire_arrays
from armfarm.fleet.registry import Registry, Robot
from armfarm.fleet.staging import ChunkStaging

MAX_BATCH_STEPS = 1_000_000  # transitions per group commit


MAX_ABS_VALUE = 1e30  # floats beyond this are refused: no real sensor, action or reward is that large
BOUND_TOLERANCE = 1e-5  # actions may exceed the registered bounds by this much (relative, at least absolute)


@dataclass(frozen=True)
class Ack:
    """What the server answers once an episode is durably stored (and again for every retry)."""

    episode_id: str
    robot_id: str
    transitions: int
    sha256: str
    env_id: str  # as stored: the upload's, or the robot's registered one where the upload named none

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Staged:
    """A chunk is durably staged; ``missing`` lists the chunks still needed (None: the final one)."""

    episode_id: str
    chunk: int
    missing: list[int] | None

    def to_json(self) -> dict:
        return {"status": "staged", **asdict(self)}


class GroupCommitter:
    """Commits queued episodes in batches: one ``store.write`` (one round of fsyncs) per batch.

    While one batch is being written, new uploads queue up and form the next, so under load many
    uploads share one durable commit; a lone upload is a batch of one and never waits for a timer.
    """

    def __init__(self, store: EpisodeStore, max_batch_steps: int = MAX_BATCH_STEPS, max_queued: int = 1024):
        self.store = store
        self.max_batch_steps = max_batch_steps
        self.max_queued = max_queued
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="armfarm-group-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Commit what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()

    def submit(self, episode: Episode) -> Future:
        """Queue ``episode``; the future says whether this upload stored it (False: the id was taken).
        Refuses with 503 when ``max_queued`` episodes already wait for the disk."""
        if self._queue.qsize() >= self.max_queued:
            raise FleetError(503, f"{self.max_queued} episodes are waiting to be written; retry later",
                             retry_after_header(1))
        future: Future = Future()
        self._queue.put((episode, future))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch, steps, stop = [item], item[0].length, False
            while steps < self.max_batch_steps:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                steps += item[0].length
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[Episode, Future]]) -> None:
        try:
            written = set(self.store.write([ep for ep, _ in batch], on_duplicate="skip"))
        except Exception as e:
            if len(batch) == 1:
                batch[0][1].set_exception(e)
                return
            for item in batch:  # isolate the culprit; the others still commit
                self._commit([item])
            return
        for episode, future in batch:  # only the first of repeated ids in a batch was stored
            future.set_result(episode.episode_id in written)
            written.discard(episode.episode_id)


class Ingest:
    """Uploads of whole episodes and of chunks, for the robots of one store."""

    def __init__(self, registry: Registry, staging: ChunkStaging, max_episode_steps: int, max_queued: int = 1024):
        self.registry = registry
        self.store = registry.store
        self.staging = staging
        self.max_episode_steps = max_episode_steps
        self.committer = GroupCommitter(self.store, max_queued=max_queued)

    def check_chunk_index(self, robot_id: str, episode_id: str, index: int) -> None:
        """Refuse (413) a chunk index no episode within ``max_episode_steps`` can have (every chunk holds
        at least one transition), before its body is read."""
        if index >= self.max_episode_steps:
            raise FleetError(413, f"chunk {index} of episode {episode_id!r} from robot {robot_id!r}: an episode has at "
                             f"most {self.max_episode_steps} transitions (--max-episode-steps), so at most that many "
                             "chunks")

    async def upload(self, robot_id: str, body: bytes) -> Ack:
        """Store a whole episode of a registered robot; return its ack once it is durable."""
        robot, episode, digest = await run_in_threadpool(self._prepare_whole, robot_id, body)
        return await self._commit(robot, episode, digest)

    async def upload_chunk(self, robot_id: str, episode_id: str, index: int, body: bytes) -> Ack | Staged:
        """Stage one chunk; return the episode's ack once it is complete and stored, else what is missing."""
        robot = await run_in_threadpool(self.registry.cached_robot, robot_id)
        ready = await run_in_threadpool(self._stage, robot, episode_id, index, body)
        if isinstance(ready, Ack | Staged):
            return ready
        episode, digest = ready
        ack = await self._commit(robot, episode, digest)
        self.staging.discard(robot.robot_id, episode_id)
        return ack

    async def _commit(self, robot: Robot, episode: Episode, digest: str) -> Ack:
        if await asyncio.wrap_future(self.committer.submit(episode)):
            return Ack(episode.episode_id, robot.robot_id, episode.length, digest, episode.env_id)
        return await run_in_threadpool(self._retry_ack, robot, episode.episode_id, digest)

    # -- checks (run in worker threads) --------------------------------------------------------------

    def _prepare_whole(self, robot_id: str, body: bytes) -> tuple[Robot, Episode, str]:
        robot = self.registry.cached_robot(robot_id)
        payload = _decode(body, robot)
        if payload.chunk is not None:
            raise FleetError(
                422,
                f"episode {payload.episode_id!r} from robot {robot.robot_id!r}: a chunk was sent as a whole "
                f"episode; PUT it to /v1/robots/{robot.robot_id}/episodes/{payload.episode_id}/chunks/"
                f"{payload.chunk.index}",
            )
        self._check_layout(robot, payload)
        return (robot, *self._episode(robot, payload))

    def _stage(self, robot: Robot, episode_id: str, index: int, body: bytes) -> Ack | Staged | tuple[Episode, str]:
        """Stage a chunk; the whole episode (and digest) once all its chunks are here."""
        payload = _decode(body, robot)
        where = f"chunk {index} of episode {episode_id!r} from robot {robot.robot_id!r}"
        if payload.chunk is None:
            raise FleetError(422, f"{where}: the body has no 'chunk' header; whole episodes go to POST .../episodes")
        if payload.chunk.index != index or payload.episode_id != episode_id:
            raise FleetError(
                422,
                f"{where}: the body is chunk {payload.chunk.index} of episode {payload.episode_id!r}; "
                "it must match the URL",
            )
        self._check_layout(robot, payload)
        self.check_chunk_index(robot.robot_id, episode_id, index)
        stored = self._stored_ack(robot, episode_id)
        if stored is not None:  # a retry after the episode was committed: only of the same content
            self._check_stored_chunk(robot, payload)
            return stored
        self.staging.put(robot.robot_id, episode_id, index, payload.chunk.final, body)
        missing = self.staging.missing(robot.robot_id, episode_id)
        if missing != []:
            return Staged(episode_id, index, missing)
        chunks = [_decode(b, robot) for b in self.staging.read(robot.robot_id, episode_id)]
        steps = sum(c.steps for c in chunks)
        if steps > self.max_episode_steps:  # counted from the headers, before anything is assembled
            self.staging.discard(robot.robot_id, episode_id)
            raise FleetError(413, f"episode {episode_id!r} from robot {robot.robot_id!r}: its chunks hold {steps} "
                             f"transitions, over the server's limit of {self.max_episode_steps}; they were discarded")
        try:
            whole = assemble(chunks)
        except (PayloadError, FleetError) as e:
            self.staging.discard(robot.robot_id, episode_id)
            message = e.message if isinstance(e, FleetError) else str(e)
            raise FleetError(422, f"episode {episode_id!r} from robot {robot.robot_id!r}: {message}; its "
                             "chunks were discarded, upload it again") from None
        try:
            return self._episode(robot, whole)
        except FleetError:
            self.staging.discard(robot.robot_id, episode_id)
            raise

    def _check_layout(self, robot: Robot, payload: EpisodePayload) -> None:
        """Arrays have the robot's registered dtypes and per-step shapes, and finite values."""
        where = f"episode {payload.episode_id!r} from robot {robot.robot_id!r}"
        spec = robot.spec
        expected = {"observations" if key is None else f"observations.{key}": s for key, s in spec.obs_items()}
        sent = sorted(n for n in payload.arrays if n.startswith("observations"))
        if sent != sorted(expected):
            raise FleetError(422, f"{where}: observation arrays {sent} differ from the registered {sorted(expected)}")
        expected["actions"] = spec.action
        for name, s in expected.items():
            a = payload.arrays[name]
            if a.dtype.name != s.dtype:
                raise FleetError(422, f"{where}: field '{name}': dtype {a.dtype.name} differs from the registered {s.dtype}")
            if a.shape[1:] != s.shape:
                raise FleetError(
                    422, f"{where}: field '{name}': per-step shape {a.shape[1:]} differs from the registered {s.shape}"
                )
        for name, a in payload.arrays.items():
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                row = int(np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))[0])
                raise FleetError(422, f"{where}: field '{name}': contains NaN or inf (first at row {row})")
            if a.dtype.kind == "f" and len(a) and np.abs(a).max() > MAX_ABS_VALUE:
                row = int(np.flatnonzero((np.abs(a.reshape(len(a), -1)) > MAX_ABS_VALUE).any(axis=1))[0])
                raise FleetError(422, f"{where}: field '{name}': a value beyond ±{MAX_ABS_VALUE:g} (first at row {row}); "
                                 "no sensor or reward is that large")
        action = spec.action
        if action.low is not None and len(payload.arrays["actions"]):
            low, high = np.asarray(action.low, np.float64), np.asarray(action.high, np.float64)
            tolerance = BOUND_TOLERANCE * np.maximum(1.0, np.maximum(np.abs(low), np.abs(high)))
            a = payload.arrays["actions"].astype(np.float64)
            outside = ((a < low - tolerance) | (a > high + tolerance)).reshape(len(a), -1).any(axis=1)
            if outside.any():
                row = int(np.flatnonzero(outside)[0])
                raise FleetError(422, f"{where}: field 'actions': row {row} is outside the registered action bounds "
                                 f"[{action.low}, {action.high}] (tolerance {BOUND_TOLERANCE:g} relative)")
        env_id = payload.meta["env_id"]
        if env_id not in ("", robot.env_id):
            raise FleetError(
                422, f"{where}: field 'meta.env_id': {env_id!r} differs from the robot's registered {robot.env_id!r}"
            )

    def _episode(self, robot: Robot, payload: EpisodePayload) -> tuple[Episode, str]:
        """The validated Episode of a whole payload, and its content digest."""
        where = f"episode {payload.episode_id!r} from robot {robot.robot_id!r}"
        if payload.steps > self.max_episode_steps:
            raise FleetError(
                413,
                f"{where}: {payload.steps} transitions exceed the server's limit of {self.max_episode_steps} "
                "(--max-episode-steps); split it into shorter episodes",
            )
        meta = {**payload.meta, "env_id": payload.meta["env_id"] or robot.env_id}
        a = payload.arrays
        episode = Episode(
            payload.observations, a["actions"], a["rewards"], a["terminated"], a["truncated"],
            episode_id=meta["episode_id"], collector_id=robot.robot_id, policy_id=meta["policy_id"],
            env_id=meta["env_id"], seed=meta["seed"], created_at=meta["created_at"],
            costs=a.get("costs"), interventions=a.get("interventions"), end_reason=meta["end_reason"],
        )
        try:
            episode.validate(robot.spec)
        except DataError as e:
            raise FleetError(422, f"{where}: field '{e.field}': {e.message}") from None
        return episode, content_digest(a, meta)

    def _stored_ack(self, robot: Robot, episode_id: str) -> Ack | None:
        """The ack of a stored episode of this robot, None if the id is free; 409 if another robot's."""
        try:
            record = self.store.record(episode_id)
        except DataError:
            return None
        if record.collector_id != robot.robot_id:
            raise FleetError(
                409,
                f"episode {episode_id!r} is already stored by another robot; robot {robot.robot_id!r} must "
                "use ids of its own (e.g. UUIDs)",
            )
        stored = self.store.read_episode(episode_id)
        return Ack(episode_id, robot.robot_id, record.length, stored_digest(stored), stored.env_id)

    def _check_stored_chunk(self, robot: Robot, chunk: EpisodePayload) -> None:
        """409 unless ``chunk`` is part of the stored episode of the same id: same metadata, and its
        transitions where its index puts them (chunks hold equal numbers of transitions but the last,
        which holds the end), so a different episode under a stored id is never acknowledged."""
        episode = self.store.read_episode(chunk.episode_id)
        stored_meta = {"policy_id": episode.policy_id, "seed": episode.seed, "created_at": episode.created_at,
                       "end_reason": episode.end_reason}
        same = all(chunk.meta.get(k) == v for k, v in stored_meta.items())
        T = chunk.steps
        start = episode.length - T if chunk.chunk.final else chunk.chunk.index * T
        stored = {**wire_arrays(episode.observations, episode.actions, episode.rewards, episode.terminated,
                                episode.truncated),
                  "costs": episode.step_costs, "interventions": episode.step_interventions}
        for name, a in chunk.arrays.items():
            rows = T + 1 if name.startswith("observations") and chunk.chunk.final else T
            part = stored.get(name)
            if not same or part is None or start < 0 or start + rows > len(part) or not np.array_equal(
                    part[start:start + rows], a):
                raise FleetError(409, f"episode {chunk.episode_id!r} of robot {robot.robot_id!r} is already stored with "
                                 f"other content than chunk {chunk.chunk.index}; a retry must resend the same episode, "
                                 "and a new episode needs a new id")

    def _retry_ack(self, robot: Robot, episode_id: str, digest: str) -> Ack:
        ack = self._stored_ack(robot, episode_id)
        if ack is None:  # cannot happen: the store just refused the id as taken
            raise RuntimeError(f"episode {episode_id!r} was neither stored nor found")
        if ack.sha256 != digest:
            raise FleetError(
                409,
                f"episode {episode_id!r} of robot {robot.robot_id!r} is already stored with other content; a "
                "retry must resend the same episode, and a new episode needs a new id",
            )
        return ack


def stored_digest(episode: Episode) -> str:
    """The content digest of an episode as the store holds it (equal to its upload's)."""
    arrays = wire_arrays(episode.observations, episode.actions, episode.rewards, episode.terminated, episode.truncated,
                         episode.costs, episode.interventions)
    meta = {"episode_id": episode.episode_id, "policy_id": episode.policy_id, "env_id": episode.env_id,
            "seed": episode.seed, "created_at": episode.created_at, "end_reason": episode.end_reason}
    return content_digest(arrays, meta)


def _decode(body: bytes, robot: Robot) -> EpisodePayload:
    try:
        return decode(body)
    except PayloadError as e:
        raise FleetError(422, f"upload from robot {robot.robot_id!r}: {e}") from None
