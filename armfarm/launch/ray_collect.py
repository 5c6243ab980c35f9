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
refused before anything runs. For stores behind an ``armfarm serve`` endpoint, run the robots as fleet
clients (``armfarm fleet sim``) on the nodes instead: their spools give the same guarantees over HTTP.

Each episode's ``collector_id`` is ``<collector>-<worker>@<node>`` (the first 12 hex digits of the Ray node
id), so ``armfarm data info`` counts episodes per node.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from armfarm.envs.behavior import BehaviorSpec

NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "glusterfs", "ceph", "fuse.sshfs",
                       "9p", "beegfs", "fuse.juicefs", "fuse.s3fs", "fuse.gcsfuse"}
MAX_RESTARTS = 4
FLUSH_EPISODES = 8  # a collector's write batch: at most this many unwritten episodes die with a node


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


def episode_id(collection: str, index: int) -> str:
    return f"{collection}-{index:09d}"


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
    pending = [a.run.remote() for a in actors]
    reported, before = 0, store.num_episodes
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            for ref in done:
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise RuntimeError(f"a Ray collector failed: {exc}") from None
            if on_progress is not None:
                now = min(store.num_episodes - before, episodes)
                if now > reported:
                    on_progress(now - reported)
                    reported = now
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
    return collection
