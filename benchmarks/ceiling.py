"""Every registered algorithm's training speed beside this machine's matrix-multiply ceiling, in one run.

    .venv/bin/python benchmarks/ceiling.py [--algos all|rebrac,awac,...] [--seconds 6] [--repeats 3]

For each algorithm, with its paper-default config (networks, batch size, critics) on Hopper-sized
synthetic data (obs 11, act 3):

1. **FLOPs per step**: XLA's own cost analysis of one compiled ``update`` (forward and backward
   passes of every network, optimiser, targets), so nothing is counted by hand.
2. **The ceiling**: the float32 FLOP rate this CPU sustains on a chain of 256x256 matrix products at
   the algorithm's batch size (``[B, 256] @ [256, 256]``, 64 of them per call, jitted), measured in the
   same run. ``ceiling steps/s = FLOP rate / FLOPs per step``: the speed of an update made only of such
   matmuls at full speed.
3. **Measured steps/s**: the loop of ``armfarm train`` (sample K batches, one fused call, metrics to
   the host), compile excluded, the median of ``--repeats`` repeats of at least ``--seconds`` each;
   repeats during which other processes took over 10% of the CPU are redone (``_cpumeter``).

The fraction reached is measured / ceiling. Results go to benchmarks/_out/ceiling.json and a markdown
table on stdout. XLA's cost analysis counts both branches of a ``lax.cond``, so for TD3+BC and ReBRAC
(whose actor steps every second update) the FLOPs per step include the actor every step: their ceiling
is understated and their fraction overstated by up to the actor's share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cpumeter import CpuMeter, cores, cpu_model, wait_for_quiet  # noqa: E402

OUT = Path(__file__).resolve().parent / "_out"


def matmul_rate(batch: int, seconds: float, layers: int = 64) -> float:
    """Sustained float32 FLOP/s of a chain of ``[batch, 256] @ [256, 256]`` products (with ReLU)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    w = jnp.asarray(np.random.default_rng(0).normal(0, 1 / 16, (layers, 256, 256)), jnp.float32)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(batch, 256)), jnp.float32)

    @jax.jit
    def chain(x, w):
        return jax.lax.scan(lambda h, wi: (jax.nn.relu(h @ wi), None), x, w)[0]

    chain(x, w).block_until_ready()
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        x = chain(x, w)
        calls += 1
    x.block_until_ready()
    return 2.0 * batch * 256 * 256 * layers * calls / (time.perf_counter() - t0)


def bench(name: str, seconds: float, repeats: int, k: int) -> dict:
    import jax
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "algos"))
    from algo_testlib import random_dataset

    from armfarm.algos import DatasetStats, get_algorithm, make_train_fn
    from armfarm.algos.core.goals import batch_source

    algo = get_algorithm(name)
    config = algo.config_cls()
    ds = random_dataset(n=100_000, obs_dim=11, act_dim=3)
    stats = DatasetStats.from_dataset(ds, action_low=-1.0, action_high=1.0)
    if name == "fqe":
        import tempfile

        from armfarm.policy import NumpyPolicy

        path = Path(tempfile.mkdtemp()) / "p.npz"
        rng = np.random.default_rng(0)
        NumpyPolicy([rng.normal(size=(11, 256)), rng.normal(size=(256, 256)), rng.normal(size=(256, 3))],
                    [np.zeros(256), np.zeros(256), np.zeros(3)]).save(path)
        config = algo.config_cls(policy_path=str(path))
    config, ds = batch_source(algo, config, ds)
    state = algo.init(config, stats, 0)
    one = {key: v[0] for key, v in ds.sample_stacked(np.random.default_rng(0), 1, config.batch_size).items()}
    cost = jax.jit(lambda s, b: algo.update(config, s, b)).lower(state, one).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost["flops"])

    fn = make_train_fn(algo, config)
    rng = np.random.default_rng(1)
    state, _ = fn(state, ds.sample_stacked(rng, k, config.batch_size))  # compile
    rates = []
    while len(rates) < repeats:
        meter, steps, t0 = CpuMeter(), 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            state, metrics = fn(state, ds.sample_stacked(rng, k, config.batch_size))
            jax.device_get(metrics)
            steps += k
        rate = steps / (time.perf_counter() - t0)
        share = meter.foreign_share()
        if share is not None and share > 0.10:
            print(f"  {name}: repeat discarded ({share:.0%} foreign CPU)", file=sys.stderr)
            wait_for_quiet(120)
            continue
        rates.append(rate)
    ceiling_flops = statistics.median(matmul_rate(config.batch_size, max(2.0, seconds / 2)) for _ in range(3))
    measured = statistics.median(rates)
    ceiling = ceiling_flops / flops
    return {"algo": name, "kind": algo.kind, "batch_size": config.batch_size, "hidden": list(config.hidden),
            "flops_per_step": flops, "matmul_gflops": ceiling_flops / 1e9, "ceiling_steps_per_s": ceiling,
            "steps_per_s": measured, "repeats": rates, "fraction": measured / ceiling}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default="all")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--k", type=int, default=50, help="gradient steps per fused call")
    args = p.parse_args(argv)
    from armfarm.algos import algorithms

    names = list(algorithms()) if args.algos == "all" else args.algos.split(",")
    rows = []
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        rows.append(bench(name, args.seconds, args.repeats, args.k))
    OUT.mkdir(exist_ok=True)
    report = {"cpu": cpu_model(), "cores": cores(), "k": args.k, "rows": rows}
    (OUT / "ceiling.json").write_text(json.dumps(report, indent=1))
    print(f"{cpu_model()}, {cores()} cores; K={args.k}")
    print("| algo | batch | hidden | MFLOP/step | matmul GFLOP/s | ceiling steps/s | steps/s | fraction |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['algo']} | {r['batch_size']} | {'x'.join(map(str, r['hidden']))} | {r['flops_per_step'] / 1e6:.1f} | "
              f"{r['matmul_gflops']:.1f} | {r['ceiling_steps_per_s']:.1f} | {r['steps_per_s']:.1f} | {r['fraction']:.0%} |")


if __name__ == "__main__":
    main()
