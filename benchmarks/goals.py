"""Goal-conditioned offline RL on OGBench-style point-maze data built locally, evaluated on the
environment's five evaluation tasks.

    .venv/bin/python benchmarks/goals.py [--datasets pointmaze-medium-navigate] [--algos gcbc,gcivl,gciql]
        [--seeds 0] [--steps 20000] [--size 1000000] [--hidden 256,256] [--batch 256] [--episodes 10]

Each dataset is built once into benchmarks/_out/goals/<name> (``armfarm datasets build``); each
(algorithm, seed) trains with OGBench's per-environment settings (GCIQL alpha 0.003 and GCIVL alpha 10
on PointMaze; GCIQL alpha 1, CRL alpha 3 and HIQL subgoal_steps 10 on cube) except the network and batch sizes and the step budget, which are set by the flags so
that a run fits a 2-core CPU. Results (success rate per task and overall, steps/s) go to
benchmarks/results/goals.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# OGBench's per-environment settings (impls/hyperparameters.sh), by dataset family (the name's first word)
OGBENCH_SETTINGS = {
    "pointmaze": {"gciql": {"alpha": 0.003}, "gcivl": {"alpha": 10.0}, "crl": {"alpha": 0.03}},
    "cube": {"gciql": {"alpha": 1.0}, "gcivl": {"alpha": 10.0}, "crl": {"alpha": 3.0}, "hiql": {"subgoal_steps": 10}},
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="pointmaze-medium-navigate")
    p.add_argument("--algos", default="gcbc,gcivl,gciql")
    p.add_argument("--seeds", default="0")
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--hidden", default="256,256")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes per task")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every algorithm (repeatable), e.g. negative_actions=4")
    p.add_argument("--tag", default="", help="suffix of the run directories (runs with other --set values)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "goals.json")
    args = p.parse_args(argv)
    from armfarm.algos import get_algorithm
    from armfarm.data import EpisodeStore
    from armfarm.datasets import build_dataset, get_recipe
    from armfarm.goals import evaluate_goal_tasks
    from armfarm.overrides import coerce_fields, parse_pairs
    from armfarm.policy import NumpyPolicy
    from armfarm.train import train

    hidden = tuple(int(h) for h in args.hidden.split(","))
    report = {"command": " ".join(["python", "benchmarks/goals.py", *(argv or sys.argv[1:])]), "settings": vars(args) | {
        "out": str(args.out)}, "datasets": {}}
    for name in args.datasets.split(","):
        recipe = get_recipe(name)
        store = HERE / "_out" / "goals" / f"{name}-n{args.size}"
        if not (store / "store.json").exists():
            build_dataset(name, store, size=args.size)
        provenance = EpisodeStore(store).provenance.get("recipe", {})
        rows = {}
        for algo in args.algos.split(","):
            runs = []
            for seed in (int(s) for s in args.seeds.split(",")):
                out = HERE / "_out" / "goals" / "runs" / f"{name}-{algo}{args.tag}-s{seed}"
                overrides = {"hidden": hidden, "batch_size": args.batch, **OGBENCH_SETTINGS.get(name.split("-")[0], {}).get(algo, {}),
                             **coerce_fields(get_algorithm(algo).config_cls, parse_pairs(args.set))}
                t0 = time.perf_counter()
                summary = train(algo, store, out, steps=args.steps, seed=seed, config_overrides=overrides,
                                overwrite=True)
                result = evaluate_goal_tasks(NumpyPolicy.load(out / "policy.npz"), recipe.env_id,
                                             episodes=args.episodes, seed=20_000 + seed)
                runs.append({"seed": seed, "success_rate": result["success_rate"],
                             "tasks": [t["success_rate"] for t in result["tasks"]],
                             "steps_per_s": summary["grad_steps_per_s"], "seconds": round(time.perf_counter() - t0, 1)})
                print(name, algo, seed, runs[-1], flush=True)
            rates = [r["success_rate"] for r in runs]
            rows[algo] = {"runs": runs, "success_mean": statistics.mean(rates),
                          "success_std": statistics.pstdev(rates) if len(rates) > 1 else 0.0}
        report["datasets"][name] = {"env_id": recipe.env_id, "provenance": provenance, "algos": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
