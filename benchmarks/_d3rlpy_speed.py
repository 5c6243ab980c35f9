"""d3rlpy half of the speed benchmark (runs inside .venv-d3rlpy, never in the project's .venv).

    .venv-d3rlpy/bin/python benchmarks/_d3rlpy_speed.py DATA.npz [--algos bc,cql,iql,td3bc]
        [--steps 50] [--seconds 5] [--repeats 3] [--warmup 20] [--threads 2] [--batch-size 256]

DATA.npz holds flat D4RL-style arrays: observations (N, obs_dim), actions (N, act_dim), rewards (N,),
terminals (N,), timeouts (N,); every episode ends on a terminal or a timeout.

For each algorithm it builds d3rlpy's implementation with d3rlpy's default hyperparameters, except:
batch size 256 (BC's default is 100) and every encoder set explicitly to a (256, 256) ReLU MLP
(d3rlpy's default VectorEncoderFactory is the same, but we pin it). It then times two loops, each after
`--warmup` untimed steps, `--repeats` times; a repeat runs at least `--steps` gradient steps and at
least `--seconds` seconds (whole chunks of 10 steps), and its rate is steps / wall time:

* ``fit_loop``: ``batch = dataset.sample_transition_batch(256); algo.update(batch)`` -- exactly the work
  of one iteration of ``algo.fit()``'s inner loop, minus its logger, progress bar and checkpointing.
  This is the like-for-like number: armfarm's timing also includes drawing its batches from the dataset.
* ``update_only``: ``algo.update(batch)`` over a pool of batches sampled beforehand, i.e. d3rlpy's
  gradient step alone (numpy -> torch conversion, forward, backward, optimizer and target updates).

The median steps/s of the repeats is reported for both, as one JSON object on stdout (everything d3rlpy
logs goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cpumeter import clean_repeats  # noqa: E402

ALGOS = ("bc", "cql", "iql", "td3bc", "awac", "rebrac", "calql")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("npz")
    p.add_argument("--algos", default=",".join(ALGOS))
    p.add_argument("--steps", type=int, default=50, help="least timed gradient steps per repeat")
    p.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="least seconds per repeat (a repeat runs whole chunks of 10 steps until both are met)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=20, help="untimed steps before the first repeat")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--pool", type=int, default=64, help="pre-sampled batches cycled by update_only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--modes", default="fit_loop,update_only")
    p.add_argument(
        "--max-busy",
        type=float,
        default=0.10,
        help="redo a repeat during which other processes took more than this share of the CPU",
    )
    p.add_argument("--retries", type=int, default=10)
    p.add_argument(
        "--quiet-wait", type=float, default=300.0, help="most seconds to wait for quiet before a redo"
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # d3rlpy's structlog and tqdm write to stdout; keep stdout for the JSON

    # Threads must be fixed before torch does any parallel work.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    import d3rlpy
    from d3rlpy.algos import (
        AWACConfig,
        BCConfig,
        CalQLConfig,
        CQLConfig,
        IQLConfig,
        ReBRACConfig,
        TD3PlusBCConfig,
    )
    from d3rlpy.dataset import MDPDataset
    from d3rlpy.models.encoders import VectorEncoderFactory

    d3rlpy.seed(args.seed)
    np.random.seed(args.seed)

    data = np.load(args.npz)
    n = int(data["observations"].shape[0])
    t0 = time.perf_counter()
    dataset = MDPDataset(
        observations=np.asarray(data["observations"], dtype=np.float32),
        actions=np.asarray(data["actions"], dtype=np.float32),
        rewards=np.asarray(data["rewards"], dtype=np.float32),
        terminals=np.asarray(data["terminals"], dtype=np.float32),
        timeouts=np.asarray(data["timeouts"], dtype=np.float32),
        action_space=d3rlpy.ActionSpace.CONTINUOUS,
    )
    dataset_build_s = time.perf_counter() - t0

    def enc():
        return VectorEncoderFactory(hidden_units=[256, 256], activation="relu")

    bs = args.batch_size
    configs = {
        "bc": lambda: BCConfig(batch_size=bs, encoder_factory=enc()),
        "cql": lambda: CQLConfig(batch_size=bs, actor_encoder_factory=enc(), critic_encoder_factory=enc()),
        "iql": lambda: IQLConfig(
            batch_size=bs,
            actor_encoder_factory=enc(),
            critic_encoder_factory=enc(),
            value_encoder_factory=enc(),
        ),
        "td3bc": lambda: TD3PlusBCConfig(
            batch_size=bs, actor_encoder_factory=enc(), critic_encoder_factory=enc()
        ),
        "awac": lambda: AWACConfig(batch_size=bs, actor_encoder_factory=enc(), critic_encoder_factory=enc()),
        "rebrac": lambda: ReBRACConfig(  # LayerNorm critics, as ReBRAC's (and armfarm's)
            batch_size=bs, actor_encoder_factory=enc(),
            critic_encoder_factory=VectorEncoderFactory(hidden_units=[256, 256], activation="relu", use_layer_norm=True)),
        "calql": lambda: CalQLConfig(batch_size=bs, actor_encoder_factory=enc(), critic_encoder_factory=enc()),
    }

    modes = [m for m in args.modes.split(",") if m]
    results = {}
    for name in [a.strip() for a in args.algos.split(",") if a.strip()]:
        if name not in configs:
            raise SystemExit(f"unknown algo {name!r}; choose from {', '.join(ALGOS)}")
        config = configs[name]()
        algo = config.create(device="cpu:0")
        t0 = time.perf_counter()
        algo.build_with_dataset(dataset)
        build_s = time.perf_counter() - t0

        for _ in range(args.warmup):
            algo.update(dataset.sample_transition_batch(bs))

        entry = {
            "build_s": build_s,
            "config": _config_summary(config),
            "n_params": _count_params(algo),
        }

        def fit_step(i, algo=algo):
            algo.update(dataset.sample_transition_batch(bs))

        pool = [dataset.sample_transition_batch(bs) for _ in range(args.pool)]

        def update_step(i, algo=algo, pool=pool):
            algo.update(pool[i % len(pool)])

        for mode, step in (("fit_loop", fit_step), ("update_only", update_step)):
            if mode not in modes:
                continue
            entry[mode] = clean_repeats(
                lambda step=step: _timed(step, args.steps, args.seconds),
                args.repeats,
                args.max_busy,
                args.retries,
                args.quiet_wait,
                lambda msg, name=name, mode=mode: print(f"[d3rlpy] {name} {mode}: {msg}", file=sys.stderr),
            )
        # d3rlpy's sampler alone, per batch (explains the gap between fit_loop and update_only)
        t0 = time.perf_counter()
        for _ in range(50):
            dataset.sample_transition_batch(bs)
        entry["sample_ms_per_batch"] = (time.perf_counter() - t0) / 50 * 1e3
        results[name] = entry
        print(
            f"[d3rlpy] {name}: "
            + ", ".join(f"{m} {entry[m]['median']:.1f} steps/s" for m in modes if m in entry),
            file=sys.stderr,
        )

    out = {
        "library": "d3rlpy",
        "d3rlpy_version": d3rlpy.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": "cpu",
        "batch_size": bs,
        "min_steps_per_repeat": args.steps,
        "min_seconds_per_repeat": args.seconds,
        "repeats": args.repeats,
        "warmup_steps": args.warmup,
        "dataset": {
            "path": os.path.abspath(args.npz),
            "transitions": n,
            "episodes": len(dataset.episodes),
            "build_s": dataset_build_s,
        },
        "timed": "fit_loop = sample_transition_batch + update (fit()'s inner loop without logging); "
        "update_only = update on pre-sampled batches",
        "algos": results,
    }
    real_stdout.write(json.dumps(out) + "\n")
    real_stdout.flush()
    return 0


def _timed(step, min_steps: int, min_seconds: float) -> tuple[float, int]:
    """Run `step(i)` in chunks of 10 until at least min_steps and min_seconds; return (steps/s, steps)."""
    i = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(10):
            step(i)
            i += 1
        elapsed = time.perf_counter() - t0
        if i >= min_steps and elapsed >= min_seconds:
            return i / elapsed, i


def _config_summary(config) -> dict:
    """The hyperparameters that decide the cost of a step, as plain JSON."""
    keep = {}
    for k, v in vars(config).items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            keep[k] = v
        elif k.endswith("encoder_factory"):
            keep[k] = {
                "hidden_units": list(getattr(v, "hidden_units", []) or []),
                "activation": getattr(v, "activation", None),
            }
        elif k == "q_func_factory":
            keep[k] = type(v).__name__
    return keep


def _count_params(algo) -> int:
    impl = algo.impl
    seen, total = set(), 0
    modules = getattr(impl, "modules", None)
    if modules is None:
        return -1
    for field in vars(modules).values():
        mods = field if isinstance(field, (list, tuple)) else [field]
        for m in mods:
            params = getattr(m, "parameters", None)
            if params is None:
                continue
            for p in params():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
    return total


if __name__ == "__main__":
    sys.exit(main())
