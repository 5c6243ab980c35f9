"""Parallel collectors: worker processes run a behaviour in an environment and write to a store.

Episode ``i`` (0-based) is reset with seed ``seed + i`` and its action noise is drawn from
``default_rng([seed, i])``, so the collected data does not depend on how episodes are spread
across workers. Each worker writes its episodes to the store in batches; a batch is durable
(and counted as collected) once :meth:`EpisodeStore.write` returns.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from armfarm import __version__
from armfarm.actors import Actor, StoreSink
from armfarm.data import EpisodeStore, StoreSpec
from armfarm.envs.behavior import BehaviorSpec, make_behavior
from armfarm.envs.registry import make_env


@dataclass(frozen=True)
class CollectReport:
    """What a collection run wrote."""

    episodes: int
    transitions: int
    return_mean: float
    return_std: float


def _worker(
    worker: int, workers: int, env_id: str, store_path: str, spec: BehaviorSpec,
    episodes: int, seed: int, collector_id: str, results: mp.Queue,
) -> None:
    """Collect episodes ``worker, worker + workers, ...`` and write them in durable batches."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        env = make_env(env_id)
        sink = StoreSink(EpisodeStore(store_path),
                         on_written=lambda batch: results.put(("done", [(e.length, e.episode_return) for e in batch])))
        with sink:
            Actor(env, make_behavior(spec, env), sink, env_id, collector_id=f"{collector_id}-{worker}",
                  seed=seed).run(range(worker, episodes, workers))
        env.close()
        results.put(("exit", worker))
    except BaseException as exc:  # report to the parent, which raises with the worker's message
        results.put(("error", f"collector {worker}: {type(exc).__name__}: {exc}"))


def collect(
    env_id: str,
    store_path: str | Path,
    spec: BehaviorSpec,
    episodes: int,
    workers: int = 1,
    seed: int = 0,
    collector_id: str = "collector",
    on_progress: Callable[[int], None] | None = None,
    ray_address: str | None = None,
    index_url: str | None = None,
    admin_token: str | None = None,
    allow_insecure_http: bool = False,
) -> CollectReport:
    """Collect ``episodes`` episodes of ``spec`` in ``env_id`` with ``workers`` processes, or with
    ``workers`` Ray actors spread over the cluster at ``ray_address`` (see
    :mod:`armfarm.launch.ray_collect`: ``local`` starts Ray on this machine).

    ``store_path`` is a store directory, created if it does not exist (with its index at ``index_url``:
    SQLite by default, or a ``postgresql://`` URL, which a store shared by many machines needs), or, with
    ``ray_address``, the ``http(s)://`` URL of a fleet server (``armfarm serve``) whose ``admin_token``
    registers the collectors as its robots. ``on_progress(n)`` is called as batches of ``n`` episodes become
    durable. Raises ``RuntimeError`` naming the worker if any worker fails; batches written (acknowledged)
    before the failure stay in the store.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    env = make_env(env_id)  # fail fast, in this process, on an unknown id
    store_spec = StoreSpec.from_gymnasium(env.observation_space, env.action_space)  # records action bounds
    env.close()
    if is_server_url(store_path):
        return _collect_through_server(env_id, str(store_path), spec, min(workers, episodes), episodes, seed,
                                       collector_id, on_progress, ray_address, index_url, admin_token,
                                       allow_insecure_http)
    store = EpisodeStore(store_path, create=True, spec=store_spec, index_url=index_url)
    if not store.provenance.get("collection"):
        store.set_provenance(
            {"collection": {"env_id": env_id, "behavior": spec.policy, "noise": spec.noise,
                            "good_fraction": spec.good_fraction, "seed": seed, "armfarm_version": __version__}}
        )
    workers = min(workers, episodes)
    if ray_address is not None:
        from armfarm.launch.ray_collect import collect_on_ray

        collection = collect_on_ray(env_id, store, spec, episodes, workers, seed, collector_id, ray_address,
                                    on_progress)
        mine = [r for r in store.snapshot() if r.episode_id.startswith(collection + "-")]
        return _report([r.length for r in mine], [r.episode_return for r in mine])
    context = mp.get_context("spawn")
    results = context.Queue()
    args = (workers, env_id, str(store_path), spec, episodes, seed, collector_id, results)
    processes = [context.Process(target=_worker, args=(w, *args), daemon=True) for w in range(workers)]
    for process in processes:
        process.start()
    lengths, returns, finished, errors = [], [], 0, []
    try:
        while finished < workers:
            try:
                kind, payload = results.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in processes) and results.empty():
                    errors.append("a collector process died without reporting (killed?)")
                    break
                continue
            if kind == "done":
                lengths += [n for n, _ in payload]
                returns += [r for _, r in payload]
                if on_progress is not None:
                    on_progress(len(payload))
            elif kind == "exit":
                finished += 1
            else:
                errors.append(payload)
                finished += 1
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    if errors:
        raise RuntimeError("; ".join(errors))
    return _report(lengths, returns)


def is_server_url(store: str | Path) -> bool:
    """Whether ``store`` names a fleet server (``http://`` or ``https://``) rather than a store directory."""
    return isinstance(store, str) and store.startswith(("http://", "https://"))


def _collect_through_server(env_id: str, server: str, spec: BehaviorSpec, workers: int, episodes: int, seed: int,
                            collector_id: str, on_progress: Callable[[int], None] | None, ray_address: str | None,
                            index_url: str | None, admin_token: str | None, allow_insecure_http: bool) -> CollectReport:
    if ray_address is None:
        raise ValueError(f"collecting through the fleet server at {server} runs the collectors on Ray: pass "
                         "--ray ADDRESS (or 'local'); on one machine, run robots with `armfarm fleet sim`")
    if admin_token is None:
        raise ValueError(f"collecting through the fleet server at {server} registers the collectors as robots: "
                         "pass its admin token (--token-file STORE/admin.token)")
    if index_url is not None:
        raise ValueError(f"--index sets up a new store's index; the fleet server at {server} owns its store already")
    from armfarm.launch.ray_collect import collect_through_server

    stored = collect_through_server(env_id, server, admin_token, spec, episodes, workers, seed, collector_id,
                                    ray_address, on_progress, allow_insecure_http)
    return _report([e["transitions"] for e in stored], [e["episode_return"] for e in stored])


def _report(lengths: list[int], returns: list[float]) -> CollectReport:
    return CollectReport(episodes=len(lengths), transitions=int(sum(lengths)),
                         return_mean=float(np.mean(returns)), return_std=float(np.std(returns)))
