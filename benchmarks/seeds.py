"""What training several seeds at once costs: ``vmap`` (one compiled call for all seeds) against
``sequential`` (each seed's own compiled call in turn, bit-identical to single runs).

    .venv/bin/python benchmarks/seeds.py [--algos iql,td3bc,cql] [--seeds 5] [--seconds 6]

Both modes run what ``armfarm train --seeds`` runs per chunk: each seed draws its own K batches from
Hopper-sized synthetic data, then the updates. Reported: gradient steps per second summed over seeds,
median of 3 repeats, compile excluded; ``1 seed`` is the single-run rate for reference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def rate(step_fn, seconds: float) -> float:
    step_fn()  # compile / warm
    out = []
    for _ in range(3):
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            steps += step_fn()
        out.append(steps / (time.perf_counter() - t0))
    return statistics.median(out)


def bench(name: str, ds, stats, args) -> tuple[float, float, float]:
    """Summed steps/s of one seed, of ``args.seeds`` seeds in turn, and of them vmapped in one call."""
    import jax
    import jax.numpy as jnp

    from armfarm.algos import get_algorithm, make_train_fn
    from armfarm.algos.core.fused import scan_updates

    algo = get_algorithm(name)
    config = algo.config_cls()
    fn = make_train_fn(algo, config)
    seeds = list(range(args.seeds))
    rngs = [np.random.default_rng(s) for s in seeds]
    states = [algo.init(config, stats, s) for s in seeds]

    def sequential(n=len(seeds)):
        for i in range(n):
            states[i], m = fn(states[i], ds.sample_stacked(rngs[i], args.k, config.batch_size))
            jax.device_get(m)
        return args.k * n

    single = rate(lambda: sequential(1), args.seconds)
    seq = rate(sequential, args.seconds)
    vtrain = jax.jit(jax.vmap(scan_updates(algo, config)))
    box = {"states": jax.tree.map(lambda *x: jnp.stack(x), *[algo.init(config, stats, s) for s in seeds])}

    def vmapped():
        per = [ds.sample_stacked(r, args.k, config.batch_size) for r in rngs]
        batches = {k: np.stack([b[k] for b in per]) for k in per[0]}
        box["states"], m = vtrain(box["states"], batches)
        jax.device_get(m)
        return args.k * len(seeds)

    vec = rate(vmapped, args.seconds)
    return single, seq, vec


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default="iql,td3bc,cql")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--k", type=int, default=50)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "algos"))
    from algo_testlib import random_dataset

    from armfarm.algos import DatasetStats

    ds = random_dataset(n=100_000, obs_dim=11, act_dim=3)
    stats = DatasetStats.from_dataset(ds, action_low=-1.0, action_high=1.0)
    print(f"| algo | 1 seed steps/s | {args.seeds} seeds sequential (sum) | {args.seeds} seeds vmap (sum) | vmap / sequential |")
    print("|---|---:|---:|---:|---:|")
    for name in args.algos.split(","):
        single, seq, vec = bench(name, ds, stats, args)
        print(f"| {name} | {single:.1f} | {seq:.1f} | {vec:.1f} | {vec / seq:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
