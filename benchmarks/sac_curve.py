"""The learning curve of an online SAC run (``armfarm train-online``) as a PNG and a markdown table.

    .venv/bin/python benchmarks/sac_curve.py RUN_DIR --png OUT.png [--every 10000]

Reads RUN_DIR/eval.csv and summary.json; prints a table of environment steps, wall time, evaluation return
(mean ± std over the evaluation episodes) and D4RL-normalised score, one row per ``--every`` steps plus the
last, followed by the run's totals.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from armfarm.evaluate.plots import plot_learning_curve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--png", type=Path, required=True)
    p.add_argument("--every", type=int, default=10_000)
    args = p.parse_args()
    rows = list(csv.DictReader((args.run_dir / "eval.csv").open()))
    summary = json.loads((args.run_dir / "summary.json").read_text())
    steps = [int(r["step"]) for r in rows]
    means = [float(r["eval/return_mean"]) for r in rows]
    stds = [float(r["eval/return_std"]) for r in rows]
    plot_learning_curve(
        steps,
        means,
        stds,
        args.png,
        f"SAC on {summary['env_id']} (seed {summary['seed']})",
        target=summary.get("target_return"),
    )
    print("| env steps | wall min | return | normalized |")
    print("|---:|---:|---:|---:|")
    for i, r in enumerate(rows):
        if steps[i] % args.every == 0 or i == len(rows) - 1:
            norm = f"{float(r['eval/normalized']):.1f}" if r["eval/normalized"] else "–"
            print(
                f"| {steps[i]:,} | {float(r['wall_s']) / 60:.1f} | {means[i]:.0f} ± {stds[i]:.0f} | {norm} |"
            )
    target = summary.get("target_return")
    print(
        f"\n{summary['env_steps']:,} env steps and {summary['grad_steps']:,} gradient steps in "
        f"{summary['seconds'] / 60:.1f} min ({summary['grad_steps_per_s']} gradient steps/s inside fused calls); "
        + (f"target {target:.1f}, reached: {summary['reached_target']}" if target is not None else "no target")
    )


if __name__ == "__main__":
    main()
