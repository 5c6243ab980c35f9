"""Ray scale-out on this machine: collection throughput on 1, 2 and 3 local Ray nodes against local processes,
Ray's overhead per episode, and a sweep's wall time with and without Ray.

    .venv/bin/python benchmarks/ray_scale.py [--env HalfCheetah-v5] [--episodes 48] [--repeats 3] [--out benchmarks/results/ray_scale.json]

* **Collection**: ``armfarm collect ENV --policy random --episodes N`` (``--env``, default HalfCheetah-v5:
  1000 steps per episode, so the run is long against start-up) into a fresh SQLite store, with
  ``W`` local worker processes (W = 1, 2, 3), and with ``W`` Ray actors on a ``ray.cluster_utils.Cluster``
  of ``W`` nodes of 1 CPU each (token authentication on). Wall time of the collection call only (the
  cluster is started before the clock starts and reused for the repeats); median of ``--repeats``.
* **Overhead per episode**: (Ray wall - local wall) / N at W = 1, and the cluster's start-up time apart.
* **Sweep**: ``armfarm sweep bc`` with 2 learning rates x 2 seeds x ``--sweep-steps`` steps on a 2-node
  cluster against one process (trials one after another).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _raybench import machine, start_cluster, stop_cluster, use_token_auth  # noqa: E402


def timed(fn) -> float:
    tick = time.perf_counter()
    fn()
    return time.perf_counter() - tick


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah-v5", help="collection env (HalfCheetah: 1000 steps per episode)")
    p.add_argument("--episodes", type=int, default=48)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sweep-steps", type=int, default=3000)
    p.add_argument("--out", type=Path, default=HERE / "results" / "ray_scale.json")
    args = p.parse_args(argv)
    use_token_auth()

    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.sweep import run_sweep

    work = Path(tempfile.mkdtemp(prefix="ray_scale_"))
    spec = BehaviorSpec("random")
    report = {"command": "python benchmarks/ray_scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "settings": vars(args) | {"out": str(args.out)},
              "collect": [], "sweep": {}}
    run = 0

    def one_collect(workers: int, address: str | None) -> tuple[float, int]:
        nonlocal run
        run += 1
        store = work / f"store{run}"
        seconds = timed(lambda: collect(args.env, store, spec, args.episodes, workers=workers, seed=run,
                                        ray_address=address))
        from armfarm.data import EpisodeStore

        transitions = EpisodeStore(store).info()["transitions"]
        shutil.rmtree(store)
        return seconds, transitions

    try:
        for workers in (1, 2, 3):
            local = [one_collect(workers, None) for _ in range(args.repeats)]
            tick = time.perf_counter()
            cluster = start_cluster(workers)
            startup = time.perf_counter() - tick
            on_ray = [one_collect(workers, cluster.address) for _ in range(args.repeats)]
            stop_cluster(cluster)
            row = {"workers": workers, "ray_nodes": workers, "cluster_start_s": round(startup, 2)}
            for name, runs in (("local", local), ("ray", on_ray)):
                wall = statistics.median(r[0] for r in runs)
                row[name] = {"wall_s": round(wall, 3), "episodes_per_s": round(args.episodes / wall, 2),
                             "transitions_per_s": round(statistics.median(r[1] / r[0] for r in runs), 1),
                             "walls": [round(r[0], 3) for r in runs]}
            row["ray_overhead_per_episode_ms"] = round((row["ray"]["wall_s"] - row["local"]["wall_s"])
                                                       / args.episodes * 1000, 1)
            report["collect"].append(row)
            print(json.dumps(row), flush=True)
        store = work / "sweep_store"
        collect("Hopper-v5", store, spec, 24, workers=2, seed=0)
        grid, settings = {"lr": ["1e-3", "3e-4"]}, {"hidden": "64,64"}
        here = timed(lambda: run_sweep("bc", store, work / "sweep_here", [0, 1], grid, args.sweep_steps,
                                       settings=settings))
        cluster = start_cluster(2)
        there = timed(lambda: run_sweep("bc", store, work / "sweep_ray", [0, 1], grid, args.sweep_steps,
                                        settings=settings, ray_address=cluster.address))
        stop_cluster(cluster)
        report["sweep"] = {"trials": 4, "steps": args.sweep_steps, "one_process_s": round(here, 2),
                           "ray_2_nodes_s": round(there, 2)}
        print(json.dumps(report["sweep"]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
