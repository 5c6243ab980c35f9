"""Collectors as Ray actors spread over a cluster's nodes, writing into a store that every node can reach.

Each of ``workers`` actors (``scheduling_strategy="SPREAD"``) records the episodes ``worker, worker +
workers, ...`` of the collection, exactly as :func:`armfarm.collect.collect`'s processes do (episode ``i``:
reset seed ``seed + i``, noise from ``default_rng([seed, i])``), and writes them to the store in durable
batches. Episode ids are deterministic, ``<collection>-<i>``, and the store skips an id it already holds,
so the guarantee survives a node's death:

* an episode whose batch was written (acknowledged) is in the store once: a restarted actor, on whichever
  node Ray places it, first drops the indices already stored, and a batch written twice (a partitioned
  node that was not dead after all) is stored once;
* an episode that was not yet written is recorded again by the restarted actor, identically.

Ray restarts a dead actor up to ``MAX_RESTARTS`` times and retries its pending ``run`` call until then.

**Where the store may live.** Every node opens the store's directory, so it must be on a filesystem all
nodes share. Its index must then take many writers from many machines: a PostgreSQL index does; SQLite
does only on one machine's local disk (its locks are not reliable over NFS, SMB or Lustre). A collection
whose nodes span more than one host, or whose store is on a network filesystem, with a SQLite index is
refused before anything runs.

**Through a fleet server** (:func:`collect_through_server`): the store stays behind an ``armfarm serve``
endpoint and the collectors are its robots, uploading over authenticated HTTP with a spool on their node's
local disk, as any robot does. Only one actor, the registrar, holds the admin token; it runs on the
driver's node, registers each collector incarnation as robot ``<collector>-<worker>@<node>`` (a fresh
token), deregisters the incarnation it replaces (so a partitioned node that was not dead after all can
upload nothing more), and lists what the server already holds of the collection (``GET /v1/episodes``), so a
restarted collector records only what is missing. An acknowledged episode is in the server's store, durably;
an episode in a dead node's spool was not acknowledged and is recorded again. A collector whose upload is
refused because another incarnation stored that id meanwhile (an upload still in flight when it was
replaced) checks that the id is stored and goes on.

Each episode's ``collector_id`` is ``<collector>-<worker>@<node>`` (the first 12 hex digits of the Ray node
id), so ``armfarm data info`` counts episodes per node.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from armfarm.envs.behavior import BehaviorSpec

NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "glusterfs", "ceph", "fuse.sshfs",
                       "9p", "beegfs", "fuse.juicefs", "fuse.s3fs", "fuse.gcsfuse"}
MAX_RESTARTS = 4
FLUSH_EPISODES = 8  # a collector's write batch: at most this many unwritten episodes die with a node
DRAIN_S = 600.0  # how long a collector through a fleet server waits for its last acks


def filesystem_type(path: str | Path) -> str:
    """The type of the filesystem holding ``path`` (from ``/proc/mounts``; ``""`` where unknown)."""
    path = os.path.realpath(path)
    best, kind = "", ""
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) >= 3 and (path == parts[1] or path.startswith(parts[1].rstrip("/") + "/")) \
                        and len(parts[1]) >= len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        return ""
    return kind


def check_shared_store(backend: str, store_path: str | Path, hosts: set[str]) -> None:
    """Refuse a SQLite index that many machines, or a network filesystem, would share."""
    if backend != "sqlite":
        return
    fs = filesystem_type(store_path)
    if len(hosts) > 1 or fs in NETWORK_FILESYSTEMS:
        where = f"{len(hosts)} hosts ({', '.join(sorted(hosts))})" if len(hosts) > 1 else f"a {fs} filesystem"
        raise ValueError(
            f"the store {store_path} keeps a SQLite index, which is not safe to share across {where}: SQLite's "
            "locks do not hold there and the index could be corrupted. Create the store with a PostgreSQL index "
            "(armfarm collect ... --index postgresql://...), or send episodes through an `armfarm serve` endpoint")


class RayCollector:
    """One collector (a Ray actor): records its share of the collection into the store."""

    def __init__(self, worker: int, workers: int, env_id: str, store_path: str, spec: BehaviorSpec, episodes: int,
                 seed: int, collection: str, collector_id: str):
        self.worker, self.workers, self.env_id, self.store_path = worker, workers, env_id, store_path
        self.spec, self.episodes, self.seed = spec, episodes, seed
        self.collection, self.collector_id = collection, collector_id

    def run(self) -> int:
        """Record every episode of this worker's share not yet in the store; returns how many it wrote."""
        import ray

        from armfarm.actors import Actor, StoreSink
        from armfarm.data import EpisodeStore
        from armfarm.envs.behavior import make_behavior
        from armfarm.envs.registry import make_env

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        node = ray.get_runtime_context().get_node_id()[:12]
        store = EpisodeStore(self.store_path)
        stored = {r.episode_id for r in store.snapshot()}
        todo = [i for i in range(self.worker, self.episodes, self.workers) if episode_id(self.collection, i) not in stored]
        env = make_env(self.env_id)
        written = 0

        def count(batch) -> None:
            nonlocal written
            written += len(batch)

        try:
            with StoreSink(store, flush_episodes=FLUSH_EPISODES, on_duplicate="skip", on_written=count) as sink:
                Actor(env, make_behavior(self.spec, env), sink, self.env_id,
                      collector_id=f"{self.collector_id}-{self.worker}@{node}", seed=self.seed,
                      episode_id=lambda i: episode_id(self.collection, i)).run(todo)
        finally:
            env.close()
        return written


class FleetRegistrar:
    """The registrar of a collection through a fleet server (a Ray actor on the driver's node): the one
    holder of the admin token. It registers collector incarnations as robots, fences the ones they replace,
    lists what the server holds of the collection, and counts acks for the driver's progress bar."""

    def __init__(self, server: str, admin_token: str, env_id: str, collector_id: str, collection: str):
        from armfarm.fleet.admin import Admin, env_spec

        self.admin = Admin(server, admin_token, wait_s=30.0)
        self.env_id, self.collector_id, self.collection = env_id, collector_id, collection
        self.spec = env_spec(env_id)
        self.robots: dict[int, str] = {}  # worker -> its current incarnation's robot id
        self.acks = 0

    def robot(self, worker: int, node: str) -> dict:
        """Register worker ``worker``'s incarnation on ``node``; its answer holds ``robot_id``, ``token``
        and ``signing_key``. The incarnation it replaces, if on another node, is deregistered."""
        from armfarm.fleet.admin import AdminError

        robot_id = f"{self.collector_id}-{worker}@{node}"
        previous = self.robots.get(worker)
        if previous is not None and previous != robot_id:
            with contextlib.suppress(AdminError):  # already gone: nothing to fence
                self.admin.deregister(previous)
        answer = self.admin.register(robot_id, self.env_id, self.spec, rotate_if_registered=True)
        self.robots[worker] = robot_id
        return answer

    def stored(self) -> list[dict]:
        """The collection's episodes the server holds (``GET /v1/episodes?prefix=<collection>-``)."""
        return list(self.admin.episodes(prefix=self.collection + "-"))

    def acked(self, n: int) -> None:
        self.acks += n

    def progress(self) -> int:
        return self.acks

    def release(self) -> None:
        """Deregister every collector robot (their episodes stay in the store)."""
        from armfarm.fleet.admin import AdminError

        for robot_id in self.robots.values():
            with contextlib.suppress(AdminError):
                self.admin.deregister(robot_id)
        self.robots.clear()


class RayFleetCollector:
    """One collector (a Ray actor) that uploads its share of the collection to a fleet server as a robot."""

    def __init__(self, worker: int, workers: int, env_id: str, server: str, spec: BehaviorSpec, episodes: int,
                 seed: int, collection: str, registrar, allow_insecure_http: bool):
        self.worker, self.workers, self.env_id, self.server = worker, workers, env_id, server
        self.spec, self.episodes, self.seed, self.collection = spec, episodes, seed, collection
        self.registrar, self.allow_insecure_http = registrar, allow_insecure_http

    def run(self) -> int:
        """Upload this worker's spool left by an earlier incarnation on this node, then record and upload
        every episode of its share the server does not hold; returns how many it recorded."""
        import ray

        from armfarm.actors import Actor
        from armfarm.envs.behavior import make_behavior
        from armfarm.envs.registry import make_env
        from armfarm.fleet.client import ClientConfig, FleetClient

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        node = ray.get_runtime_context().get_node_id()[:12]
        answer = ray.get(self.registrar.robot.remote(self.worker, node))
        robot_id = answer["robot_id"]
        spool = Path(tempfile.gettempdir()) / "armfarm-collect" / self.collection / robot_id
        config = ClientConfig(server=self.server, token=answer["token"], robot_id=robot_id, env_id=None,
                              spool_dir=spool, signing_key=answer["signing_key"], follow_policies=False,
                              allow_insecure_http=self.allow_insecure_http)
        env = make_env(self.env_id)
        try:
            with FleetClient(config, on_ack=lambda _ack: self.registrar.acked.remote(1),
                             action_space=env.action_space) as client:
                self._drain(client)  # what this node's earlier incarnation spooled but had not delivered
                stored = {e["episode_id"] for e in ray.get(self.registrar.stored.remote())}
                todo = [i for i in range(self.worker, self.episodes, self.workers)
                        if episode_id(self.collection, i) not in stored]
                Actor(env, make_behavior(self.spec, env), client, self.env_id, collector_id=robot_id,
                      seed=self.seed, episode_id=lambda i: episode_id(self.collection, i)).run(todo)
                self._drain(client)
        finally:
            env.close()
        shutil.rmtree(spool, ignore_errors=True)
        with contextlib.suppress(OSError):  # the collection's directory, once no other collector here uses it
            spool.parent.rmdir()
        return len(todo)

    def _drain(self, client) -> None:
        """Wait for every spooled episode's ack. A refused upload is fine only if its id is stored (by an
        incarnation this one replaced); anything else fails the collection with the server's reason."""
        import ray

        if not client.drain(DRAIN_S):
            raise RuntimeError(f"{client.config.robot_id}: episodes still unacknowledged after {DRAIN_S:.0f}s "
                               f"({client.last_error}); they stay in {client.spool.root}")
        rejected = client.spool.rejected()
        if not rejected:
            return
        stored = {e["episode_id"] for e in ray.get(self.registrar.stored.remote())}
        for path in rejected:
            episode = path.stem.split("-", 1)[1]  # the spool names files <time>-<episode id>.episode
            reason = path.with_suffix(".reason.txt")
            if episode not in stored:
                raise RuntimeError(f"{client.config.robot_id}: the server refused episode {episode}: "
                                   f"{reason.read_text() if reason.exists() else 'no reason recorded'}")
            path.unlink()
            reason.unlink(missing_ok=True)


def episode_id(collection: str, index: int) -> str:
    return f"{collection}-{index:09d}"


def _wait(ray, actors: list, progress: Callable[[], int], episodes: int,
          on_progress: Callable[[int], None] | None) -> None:
    """Run every actor's ``run`` to the end, reporting ``progress()`` (episodes done so far) once a second;
    the actors are killed (not restarted) on the way out, whatever happened."""
    pending = [a.run.remote() for a in actors]
    reported = 0
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            for ref in done:
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise RuntimeError(f"a Ray collector failed: {exc}") from None
            if on_progress is not None:
                now = min(progress(), episodes)
                if now > reported:
                    on_progress(now - reported)
                    reported = now
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)


def collect_on_ray(env_id: str, store, spec: BehaviorSpec, episodes: int, workers: int, seed: int,
                   collector_id: str, address: str, on_progress: Callable[[int], None] | None = None) -> str:
    """Run the collection on the Ray cluster at ``address`` into ``store`` (an open :class:`EpisodeStore`);
    returns the collection's id (the prefix of its episode ids). ``on_progress(n)`` reports newly stored
    episodes, polled from the store's episode count (one index query a second)."""
    from armfarm.launch.ray_cluster import connect

    ray = connect(address)
    hosts = {n["NodeManagerHostname"] for n in ray.nodes() if n.get("Alive")}
    check_shared_store(store.index.location.backend, store.path, hosts)
    collection = f"{collector_id}-{uuid.uuid4().hex[:12]}"
    # max_task_retries=-1: retry run() for as long as the actor may be restarted (a finite count is used up
    # by retries against the dead actor's address before Ray has noticed the node died)
    remote = ray.remote(num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=-1)(RayCollector)
    actors = [remote.options(scheduling_strategy="SPREAD").remote(
        w, workers, env_id, str(Path(store.path).resolve()), spec, episodes, seed, collection, collector_id)
        for w in range(workers)]
    before = store.num_episodes
    _wait(ray, actors, lambda: store.num_episodes - before, episodes, on_progress)
    return collection


def collect_through_server(env_id: str, server: str, admin_token: str, spec: BehaviorSpec, episodes: int,
                           workers: int, seed: int, collector_id: str, address: str,
                           on_progress: Callable[[int], None] | None = None,
                           allow_insecure_http: bool = False) -> list[dict]:
    """Run the collection on the Ray cluster at ``address``, its collectors uploading to the fleet server at
    ``server`` (``admin_token`` registers them); returns the server's listing of the collection's episodes
    (``GET /v1/episodes`` rows), one per index. ``on_progress(n)`` reports acks."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from armfarm.fleet.client import check_transport
    from armfarm.launch.ray_cluster import connect

    check_transport(server, allow_insecure_http)
    ray = connect(address)
    collection = f"{collector_id}-{uuid.uuid4().hex[:12]}"
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    registrar = ray.remote(num_cpus=0)(FleetRegistrar).options(scheduling_strategy=here).remote(
        server, admin_token, env_id, collector_id, collection)
    remote = ray.remote(num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=-1)(RayFleetCollector)
    actors = [remote.options(scheduling_strategy="SPREAD").remote(
        w, workers, env_id, server, spec, episodes, seed, collection, registrar, allow_insecure_http)
        for w in range(workers)]
    try:
        _wait(ray, actors, lambda: ray.get(registrar.progress.remote()), episodes, on_progress)
        stored = ray.get(registrar.stored.remote())
    finally:  # the collectors' registrations end with the collection, however it ends
        with contextlib.suppress(ray.exceptions.RayError):
            ray.get(registrar.release.remote(), timeout=60)
        ray.kill(registrar)
    missing = episodes - len({e["episode_id"] for e in stored})
    if missing or len(stored) != episodes:
        raise RuntimeError(f"the server holds {len(stored)} episodes of collection {collection} for {episodes} "
                           f"indices ({missing} missing)")
    return stored
