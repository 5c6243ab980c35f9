"""IQL at a small budget: which of armfarm's choices makes it trail d3rlpy's early in training.

    .venv/bin/python benchmarks/iql_early.py --store STORE [--steps 5000] [--seeds 0,1,2] [--eval-episodes 10]

Each variant changes one thing from armfarm's IQL defaults:

* ``default``: all three losses from the pre-update parameters (CORL's order), cosine actor schedule
  over 1M steps, orthogonal initialisation, state-independent log-std;
* ``value_first``: the reference code's order (refit V, then Q and pi with the new V);
* ``constant_lr``: no cosine schedule on the actor's learning rate;
* ``torch_init``: PyTorch's default initialisation (d3rlpy's) instead of orthogonal.

Every variant trains on the same store with the same seeds and is evaluated with the scoreboard's
protocol (the deterministic policy, ``--eval-episodes`` episodes seeded 100000, ...). Reported: the
D4RL-normalised score, mean ± std over seeds. Results go to benchmarks/_out/iql_early.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

VARIANTS = {
    "default": {},
    "value_first": {"value_first": True},
    "constant_lr": {"actor_lr_schedule": "constant"},
    "torch_init": {"init": "torch"},
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "_out" / "iql_early")
    args = p.parse_args(argv)

    from armfarm.data import TransitionDataset
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.policy import NumpyPolicy
    from armfarm.train import train

    data = TransitionDataset.from_store(args.store)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for name, overrides in VARIANTS.items():
        scores = []
        for seed in seeds:
            run = args.out / name / f"seed_{seed}"
            train("iql", args.store, run, steps=args.steps, seed=seed, config_overrides=overrides, dataset=data,
                  overwrite=True)
            result = evaluate_policy(NumpyPolicy.load(run / "policy.npz"), "Hopper-v5",
                                     episodes=args.eval_episodes, seed=100_000)
            scores.append(result.normalized)
            print(f"{name} seed {seed}: {result.normalized:.1f}", file=sys.stderr, flush=True)
        results[name] = {"scores": scores, "mean": float(np.mean(scores)), "std": float(np.std(scores))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out.parent / "iql_early.json").write_text(json.dumps({"args": vars(args) | {"store": str(args.store),
                                                                "out": str(args.out)}, "results": results}, indent=1))
    print(f"| variant | normalized score at {args.steps} steps (seeds {args.seeds}) |\n|---|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['mean']:.1f} ± {r['std']:.1f} |")


if __name__ == "__main__":
    main()
