"""How many fused SAC updates per call (K) keep online learning efficient, and what they buy in speed.

    .venv/bin/python benchmarks/sac_updates_per_call.py [--ks 1,10,50,250] [--env Pendulum-v1]
        [--steps 8000] [--seeds 0,1] [--hidden 256,256]

The online loop (armfarm.online) acts K environment steps with a fixed copy of the actor, then runs K
gradient steps in one compiled call, so the policy that collects data is up to K - 1 updates stale. For
each K this trains SAC for ``--steps`` environment steps per seed and prints the final evaluation return
(10 episodes) and the gradient steps per second inside the fused calls, as a markdown table.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

from armfarm.online import train_online


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ks", default="1,10,50,250")
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--start-steps", type=int, default=1000)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--hidden", default="256,256")
    args = p.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    print(
        f"{args.env}, {args.steps} env steps, {args.start_steps} random, hidden {hidden}, seeds {args.seeds}\n"
    )
    print("| K | final return (mean ± std over seeds) | grad steps/s in fused calls | wall s per run |")
    print("|---:|---:|---:|---:|")
    for k in (int(x) for x in args.ks.split(",")):
        returns, rates, walls = [], [], []
        for seed in (int(s) for s in args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as run:
                s = train_online(
                    "sac",
                    args.env,
                    run,
                    steps=args.steps,
                    seed=seed,
                    start_steps=args.start_steps,
                    updates_per_call=k,
                    eval_every=args.steps,
                    eval_episodes=10,
                    config_overrides={"hidden": hidden},
                )
            returns.append(s["eval"]["return_mean"])
            rates.append(s["grad_steps_per_s"])
            walls.append(s["seconds"])
        print(
            f"| {k} | {np.mean(returns):.0f} ± {np.std(returns):.0f} | {np.mean(rates):.0f} | {np.mean(walls):.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
