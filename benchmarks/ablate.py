"""Ablations behind the scoreboard's explanations: one armfarm algorithm on one built dataset, with config
variants, on diagnostic seeds that the scoreboard does not use (so nothing is tuned on its test seeds).

    .venv/bin/python benchmarks/ablate.py --dataset hopper-medium --algo bc --steps 10000 --seeds 10,11,12 \\
        --variant default --variant batch_size=100,lr=1e-3,normalize_obs=false

Every variant trains with ``armfarm.train.train`` and is evaluated exactly as in ``benchmarks/scores.py``
(deterministic policy, ``--eval-episodes`` episodes seeded 100000, ...). Prints one markdown row per variant
(normalised score mean ± std over seeds, and the per-seed scores) and appends every run to
``benchmarks/_out/ablate/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scores import ROOT, ensure_dataset, evaluate  # noqa: E402

OUT = Path(__file__).resolve().parent / "_out" / "ablate"


def parse_variant(text: str) -> dict:
    """``default`` or ``key=value,key=value`` (values as for ``armfarm train --set``)."""
    if text == "default":
        return {}
    return dict(item.split("=", 1) for item in text.split(","))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--algo", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seeds", default="10,11,12")
    p.add_argument("--variant", action="append", required=True, help="'default' or key=value,... (repeatable)")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--stores-dir", type=Path, default=ROOT / "runs" / "datasets")
    args = p.parse_args(argv)

    from armfarm.train import train

    store, _, env_id = ensure_dataset(args.dataset, args.stores_dir, None)
    seeds = [int(s) for s in args.seeds.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    print("| variant | score | per seed |\n|---|---:|---|")
    for variant in args.variant:
        overrides = parse_variant(variant)
        scores = []
        for seed in seeds:
            name = f"{args.dataset}-{args.algo}-{variant.replace('=', '_').replace(',', '-')}-s{seed}-n{args.steps}"
            run_dir = OUT / "runs" / name
            train(args.algo, store, run_dir, steps=args.steps, seed=seed, config_overrides=overrides, overwrite=True)
            result = evaluate("armfarm", run_dir / "policy.npz", env_id, args.eval_episodes)
            scores.append(result["normalized"])
            row = {"dataset": args.dataset, "algo": args.algo, "steps": args.steps, "seed": seed,
                   "variant": variant, "eval_episodes": args.eval_episodes, "eval": result}
            with (OUT / "results.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
        per_seed = " / ".join(f"{s:.1f}" for s in scores)
        print(f"| {variant} | {np.mean(scores):.1f} ± {np.std(scores):.1f} | {per_seed} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
