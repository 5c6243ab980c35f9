"""Speed benchmark: armfarm's fused JAX training steps against d3rlpy (PyTorch) on the same data.

    .venv/bin/python benchmarks/speed.py [--steps N] [--seconds S] [--repeats R]
        [--algos bc,cql,iql,td3bc] [--skip-d3rlpy] [--transitions 1000000] [--data hopper|synthetic]
        [--k 250] [--k-cql 50] [--cpus 0,1] [--max-busy 0.1] [--retries 10] [--wait-quiet 300]

What happens, in one run:

1. A Hopper-sized dataset (obs 11, act 3) is made once and cached as an .npz under benchmarks/_out/:
   by default real Hopper-v5 rollouts of a uniform-random policy (like D4RL's hopper-random), collected
   by one process per core; ``--data synthetic`` makes random arrays instead (no MuJoCo needed).
2. armfarm: for each algorithm, ``make_train_fn(algo, config)`` gives a jitted function that runs K
   gradient steps (``lax.scan``) on a stack of K batches. Compilation (the first call) is timed apart
   and excluded. A timed repeat is the loop of ``armfarm train``: ``batches =
   TransitionDataset.sample_stacked(rng, K, 256); state, metrics = train_fn(state, batches)``, metrics
   fetched to the host after every call, so drawing the batches is inside the timing, as it is inside
   training. steps/s = K * calls / wall time.
3. d3rlpy, in its own venv (benchmarks/d3rlpy_env.sh) on the same .npz, via benchmarks/_d3rlpy_speed.py:
   ``algo.update(dataset.sample_transition_batch(256))`` in a loop (fit()'s inner loop without its
   logger) -- the like-for-like number -- and, for reference, ``algo.update`` on pre-sampled batches.
4. A markdown table (armfarm steps/s, d3rlpy steps/s, ratio, target) is printed and, with every raw
   number, machine and version, written to benchmarks/_out/speed.json and benchmarks/_out/speed.md.

Both sides use the same 2x256 MLPs, batch 256, float32, CPU, and the same cores (torch gets as many
threads as there are usable cores; XLA's CPU backend uses all of them). Each repeat runs at least
``--steps`` gradient steps and at least ``--seconds`` seconds; the median of ``--repeats`` is reported.
The machine may be shared: a repeat during which other processes took more than ``--max-busy`` of the
CPU is thrown away and redone after waiting for quiet (benchmarks/_cpumeter.py), and the worst accepted
share is printed next to every row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cpumeter import CpuMeter, clean_repeats, cores, cpu_model, wait_for_quiet  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "_out"
ALGOS = ("bc", "cql", "iql", "td3bc", "awac", "rebrac", "calql")
TARGETS = {"bc": 3.0, "cql": 1.5, "iql": 3.0, "td3bc": 3.0, "awac": 1.0, "rebrac": 1.0, "calql": 1.0}
D3RLPY_NAMES = {"bc": "BC", "cql": "CQL", "iql": "IQL", "td3bc": "TD3+BC", "awac": "AWAC", "rebrac": "ReBRAC",
                "calql": "Cal-QL"}
OBS_DIM, ACT_DIM = 11, 3


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--steps", type=int, default=0, help="least gradient steps per timed repeat (both libraries)"
    )
    p.add_argument(
        "--seconds", type=float, default=5.0, help="least seconds per timed repeat (both libraries)"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--algos", default=",".join(ALGOS))
    p.add_argument("--skip-d3rlpy", action="store_true", help="measure armfarm only")
    p.add_argument(
        "--k",
        type=int,
        default=250,
        help="batches stacked per armfarm train_fn call (armfarm train's default)",
    )
    p.add_argument(
        "--k-cql",
        type=int,
        default=50,
        help="K for CQL: one CQL step costs ~0.1 s here, so K only sets the length of a call (and of the "
        "quiet window a repeat needs), not the throughput",
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--hidden", default="256,256", help="hidden layer widths of every MLP")
    p.add_argument("--transitions", type=int, default=1_000_000)
    p.add_argument("--data", choices=("hopper", "synthetic"), default="hopper")
    p.add_argument("--npz", type=Path, default=None, help="use this dataset instead of making one")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-update-only",
        action="store_true",
        help="skip the reference timings on pre-sampled batches (both libraries)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=300.0,
        help="before timing, wait up to this many seconds for other processes to leave the CPU idle",
    )
    p.add_argument(
        "--max-busy",
        type=float,
        default=0.10,
        help="redo a timed repeat during which other processes took more than this share of the CPU",
    )
    p.add_argument("--retries", type=int, default=10, help="most redone repeats per measurement")
    p.add_argument(
        "--cpus",
        default=None,
        help="pin both libraries to these CPUs, e.g. 0,1 or 1 (default: all usable; threads follow the count)",
    )
    p.add_argument("--out", type=Path, default=OUT / "speed.json")
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------------------
# machine


def machine_info() -> dict:
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
    }


# --------------------------------------------------------------------------------------------------
# dataset


def _collect_hopper(args: tuple[int, int]) -> dict:
    """One worker: `n` transitions of Hopper-v5 under a uniform-random policy."""
    n, seed = args
    import gymnasium as gym
    import numpy as np

    env = gym.make("Hopper-v5")
    rng = np.random.default_rng(seed)
    obs_buf = np.empty((n, OBS_DIM), np.float32)
    next_buf = np.empty((n, OBS_DIM), np.float32)
    act = rng.uniform(-1.0, 1.0, size=(n, ACT_DIM)).astype(np.float32)
    rew = np.empty(n, np.float32)
    term = np.zeros(n, np.float32)
    tout = np.zeros(n, np.float32)
    obs, _ = env.reset(seed=seed)
    for t in range(n):
        nxt, r, terminated, truncated, _ = env.step(act[t])
        obs_buf[t], next_buf[t], rew[t] = obs, nxt, r
        if terminated or truncated:
            term[t], tout[t] = float(terminated), float(truncated and not terminated)
            obs, _ = env.reset()
        else:
            obs = nxt
    if not (term[-1] or tout[-1]):
        tout[-1] = 1.0  # the collector cut the last episode: truncated, bootstrap
    env.close()
    return {
        "observations": obs_buf,
        "actions": act,
        "rewards": rew,
        "next_observations": next_buf,
        "terminals": term,
        "timeouts": tout,
    }


def _synthetic(n: int, seed: int) -> dict:
    """Random-ish Hopper-shaped data: episodes of random length with smooth observations."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ends = np.cumsum(rng.integers(20, 1000, size=n // 20 + 2))
    ends = ends[ends < n]
    term = np.zeros(n, np.float32)
    tout = np.zeros(n, np.float32)
    is_term = rng.random(len(ends)) < 0.7
    term[ends[is_term] - 1] = 1.0
    tout[ends[~is_term] - 1] = 1.0
    if not (term[-1] or tout[-1]):
        tout[-1] = 1.0
    walk = np.cumsum(rng.standard_normal((n + 1, OBS_DIM)).astype(np.float32) * 0.05, axis=0)
    obs = np.tanh(walk).astype(np.float32)
    return {
        "observations": obs[:-1],
        "next_observations": obs[1:],
        "actions": rng.uniform(-1, 1, (n, ACT_DIM)).astype(np.float32),
        "rewards": rng.standard_normal(n).astype(np.float32),
        "terminals": term,
        "timeouts": tout,
    }


def make_dataset(kind: str, n: int, seed: int) -> tuple[Path, dict]:
    import numpy as np

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{'hopper_v5_random' if kind == 'hopper' else 'synthetic'}_{n}_s{seed}.npz"
    if path.exists():
        try:
            with np.load(path) as f:
                if f["observations"].shape == (n, OBS_DIM):
                    return path, {"kind": kind, "cached": True, "generate_s": None}
        except Exception:  # a half-written file: make it again
            pass
    t0 = time.perf_counter()
    if kind == "hopper":
        try:
            workers = max(1, min(cores(), 8))
            sizes = [n // workers + (i < n % workers) for i in range(workers)]
            # spawn: the workers must not inherit a half-initialised XLA runtime
            with mp.get_context("spawn").Pool(workers) as pool:
                parts = pool.map(_collect_hopper, [(s, seed * 1000 + i) for i, s in enumerate(sizes)])
            data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        except Exception as e:  # no MuJoCo here: fall back to synthetic data of the same shape
            print(f"[speed] Hopper-v5 rollouts failed ({e!r}); using synthetic data", file=sys.stderr)
            return make_dataset("synthetic", n, seed)
    else:
        data = _synthetic(n, seed)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    os.replace(tmp, path)
    return path, {"kind": kind, "cached": False, "generate_s": time.perf_counter() - t0}


def load_dataset(path: Path) -> dict:
    import numpy as np

    with np.load(path) as f:
        data = {k: np.ascontiguousarray(f[k], dtype=np.float32) for k in f.files}
    if "next_observations" not in data:  # D4RL-style file without them: next row within an episode
        obs, ends = data["observations"], (data["terminals"] + data["timeouts"]) > 0
        nxt = np.concatenate([obs[1:], obs[-1:]])
        nxt[ends] = obs[ends]
        data["next_observations"] = nxt
    return data


def dataset_summary(data: dict) -> dict:
    import numpy as np

    ends = (data["terminals"] + data["timeouts"]) > 0
    episodes = int(ends.sum())
    return {
        "transitions": int(data["observations"].shape[0]),
        "obs_dim": int(data["observations"].shape[1]),
        "act_dim": int(data["actions"].shape[1]),
        "episodes": episodes,
        "mean_episode_length": float(len(ends) / max(episodes, 1)),
        "terminals": int(data["terminals"].sum()),
        "reward_mean": float(np.mean(data["rewards"])),
    }


# --------------------------------------------------------------------------------------------------
# armfarm


BATCH_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")


class NumpySampler:
    """Fallback when armfarm.data has no TransitionDataset: uniform sampling with replacement of K
    batches of B transitions as (K, B, ...) float32 arrays (the sample_stacked contract)."""

    def __init__(self, data: dict):
        self.arrays = {k: data[k] for k in BATCH_KEYS}
        self.size = int(data["observations"].shape[0])
        for k, v in data.items():
            setattr(self, k, v)

    def sample_stacked(self, rng, num_batches: int, batch_size: int) -> dict:
        idx = rng.integers(0, self.size, size=(num_batches, batch_size))
        return {key: arr[idx] for key, arr in self.arrays.items()}


def training_dataset(data: dict):
    """armfarm's own TransitionDataset (what `armfarm train` samples from), else NumpySampler."""
    try:
        from armfarm.data.dataset import TransitionDataset

        ds = TransitionDataset.from_arrays(
            data["observations"],
            data["actions"],
            data["rewards"],
            data["next_observations"],
            data["terminals"],
            data["timeouts"],
        )
        return ds, "armfarm.data.TransitionDataset.sample_stacked"
    except (ImportError, AttributeError) as e:
        print(
            f"[speed] TransitionDataset.from_arrays unavailable ({e!r}); sampling with numpy", file=sys.stderr
        )
        return NumpySampler(data), "numpy fancy indexing (fallback)"


def dataset_stats(common, ds, data: dict):
    """DatasetStats.from_dataset, with Hopper's action bounds [-1, 1]."""
    import numpy as np

    if not hasattr(ds, "episode_returns"):
        ends = np.flatnonzero((data["terminals"] + data["timeouts"]) > 0)
        csum = np.concatenate([[0.0], np.cumsum(data["rewards"], dtype=np.float64)])
        starts = np.concatenate([[0], ends[:-1] + 1])
        ds.episode_returns = csum[ends + 1] - csum[starts]
    act_dim = int(data["actions"].shape[1])
    return common.DatasetStats.from_dataset(ds, action_low=-np.ones(act_dim), action_high=np.ones(act_dim))


def make_config(algo, batch_size: int, hidden: tuple[int, ...]):
    """The algorithm's default config with batch size and hidden widths pinned; returns (config, overrides)."""
    config = algo.config_cls()
    overrides = {}
    if dataclasses.is_dataclass(config):
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            if f.name == "batch_size" and value != batch_size:
                overrides[f.name] = batch_size
            elif "hidden" in f.name and isinstance(value, (tuple, list)) and tuple(value) != hidden:
                overrides[f.name] = type(value)(hidden)
        if overrides:
            config = dataclasses.replace(config, **overrides)
    return config, overrides


def _plain(x):
    if dataclasses.is_dataclass(x):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (int, float, str, bool)) or x is None:
        return x
    return repr(x)


def _repeat(run_calls, k: int, min_steps: int, min_seconds: float, est_call_s: float) -> tuple[float, int]:
    """Time one repeat: choose a number of calls to meet min_steps and min_seconds, return (steps/s, steps)."""
    calls = max(1, math.ceil(min_steps / k), math.ceil(min_seconds / max(est_call_s, 1e-6)))
    t0 = time.perf_counter()
    run_calls(calls)
    dt = time.perf_counter() - t0
    return calls * k / dt, calls * k


def bench_armfarm(names, data, args) -> dict:
    import armfarm.algos as common

    hidden = tuple(int(h) for h in args.hidden.split(","))
    ds, sampler_name = training_dataset(data)
    stats = dataset_stats(common, ds, data)
    results = {"sampler": sampler_name}
    for name in names:
        try:
            results[name] = _bench_one(name, common, stats, ds, args, hidden)
        except Exception as e:  # one broken algorithm must not hide the others' numbers
            import traceback

            traceback.print_exc()
            results[name] = {"error": repr(e)}
    return results


def _bench_one(name, common, stats, ds, args, hidden) -> dict:
    import jax
    import numpy as np

    from armfarm.algos.core.batches import add_batch_columns

    algo = common.get_algorithm(name)
    config, overrides = make_config(algo, args.batch_size, hidden)
    if getattr(ds, "extra", None) is not None:  # the columns some algorithms read (next_actions, mc_returns)
        ds.extra.clear()
        add_batch_columns(ds, algo.batch_keys, config)
    state = algo.init(config, stats, args.seed)
    train_fn = common.make_train_fn(algo, config)
    rng = np.random.default_rng(args.seed + 1)

    def sampler(k, b, ds=ds, rng=rng):
        return ds.sample_stacked(rng, k, b)

    k, b = (args.k_cql if name in ("cql", "calql") else args.k), args.batch_size
    n_params = int(sum(np.size(x) for x in jax.tree_util.tree_leaves(state)))

    # compile (and first run): excluded from the timings
    t0 = time.perf_counter()
    state, metrics = train_fn(state, sampler(k, b))
    jax.block_until_ready((state, metrics))
    compile_s = time.perf_counter() - t0
    # a second, warm call: its wall time sizes the repeats
    t0 = time.perf_counter()
    state, metrics = train_fn(state, sampler(k, b))
    jax.block_until_ready((state, metrics))
    est_call_s = time.perf_counter() - t0

    box = {"state": state}

    def sample_and_train(calls, box=box, train_fn=train_fn, sampler=sampler, k=k, b=b):
        # the loop of `armfarm train`: sample K batches, one fused call, metrics back to the host
        state = box["state"]
        for _ in range(calls):
            state, metrics = train_fn(state, sampler(k, b))
            box["metrics"] = jax.device_get(metrics)
        jax.block_until_ready(state)
        box["state"] = state

    def log(msg, name=name):
        print(f"[armfarm] {name}: {msg}", file=sys.stderr, flush=True)

    def timed(fn):
        return clean_repeats(
            lambda: _repeat(fn, k, args.steps, args.seconds, est_call_s),
            args.repeats,
            args.max_busy,
            args.retries,
            args.wait_quiet,
            log,
        )

    main = timed(sample_and_train)
    entry = {
        "steps_per_s": main["median"],
        **{key: v for key, v in main.items() if key != "median"},
        "compile_s": compile_s,
        "k": k,
        "n_params_in_state": n_params,
        "config": _plain(config),
        "config_overrides": _plain(overrides),
    }
    metrics_host = box["metrics"]
    entry["last_metrics"] = {
        key: float(np.asarray(v).reshape(-1)[-1])
        for key, v in metrics_host.items()
        if np.asarray(v).size > 0 and np.issubdtype(np.asarray(v).dtype, np.number)
    }
    entry["finite"] = all(math.isfinite(v) for v in entry["last_metrics"].values())

    if not args.no_update_only:
        fixed = sampler(k, b)

        def train_only(calls, box=box, train_fn=train_fn, fixed=fixed):
            state = box["state"]
            for _ in range(calls):
                state, metrics = train_fn(state, fixed)
                box["metrics"] = jax.device_get(metrics)
            jax.block_until_ready(state)
            box["state"] = state

        ref = timed(train_only)
        entry["update_only"] = {
            "steps_per_s": ref["median"],
            **{key: v for key, v in ref.items() if key != "median"},
        }
        t0 = time.perf_counter()
        for _ in range(10):
            sampler(k, b)
        entry["sample_ms_per_batch"] = (time.perf_counter() - t0) / (10 * k) * 1e3
    print(
        f"[armfarm] {name}: {entry['steps_per_s']:.1f} steps/s (compile {compile_s:.1f} s, K={k})",
        file=sys.stderr,
        flush=True,
    )
    return entry


# --------------------------------------------------------------------------------------------------
# d3rlpy


def bench_d3rlpy(names, npz: Path, args) -> dict:
    env_script = HERE / "d3rlpy_env.sh"
    py = (
        subprocess.run(["bash", str(env_script)], check=True, capture_output=True, text=True, cwd=ROOT)
        .stdout.strip()
        .splitlines()[-1]
    )
    threads = cores()
    cmd = [
        py,
        str(HERE / "_d3rlpy_speed.py"),
        str(npz),
        "--algos",
        ",".join(names),
        "--steps",
        str(max(args.steps, 10)),
        "--seconds",
        str(args.seconds),
        "--repeats",
        str(args.repeats),
        "--threads",
        str(threads),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(args.seed),
        "--max-busy",
        str(args.max_busy),
        "--retries",
        str(args.retries),
        "--quiet-wait",
        str(args.wait_quiet),
    ]
    if args.no_update_only:
        cmd += ["--modes", "fit_loop"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    print("[speed] " + shlex.join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    for line in proc.stderr.splitlines():
        if line.startswith("[d3rlpy]"):
            print(line, file=sys.stderr, flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"d3rlpy benchmark failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["command"] = shlex.join(cmd)
    return out


# --------------------------------------------------------------------------------------------------
# report


def table(names, arm: dict, d3: dict | None) -> tuple[str, list[dict]]:
    rows = []
    lines = [
        "| algo | armfarm steps/s | d3rlpy steps/s | ratio | target | met | other load |",
        "|---|---:|---:|---:|---:|:---:|---:|",
    ]
    for name in names:
        a = arm.get(name, {}).get("steps_per_s")
        dentry = (d3 or {}).get("algos", {}).get(name, {})
        d = dentry.get("fit_loop", {}).get("median")
        du = dentry.get("update_only", {}).get("median")
        ratio = a / d if a and d else None
        shares = [
            arm.get(name, {}).get("foreign_cpu_share"),
            dentry.get("fit_loop", {}).get("foreign_cpu_share"),
        ]
        shares = [x for x in shares if x is not None]
        other = max(shares) if shares else None
        row = {
            "algo": name,
            "armfarm_steps_per_s": a,
            "d3rlpy_steps_per_s": d,
            "ratio": ratio,
            "target": TARGETS[name],
            "met": None if ratio is None else ratio >= TARGETS[name],
            "armfarm_update_only": arm.get(name, {}).get("update_only", {}).get("steps_per_s"),
            "d3rlpy_update_only": du,
            "ratio_vs_d3rlpy_update_only": a / du if a and du else None,
            "foreign_cpu_share": other,
        }
        rows.append(row)
        lines.append(
            f"| {D3RLPY_NAMES[name]} | {_f(a)} | {_f(d)} | {_r(ratio)} | {TARGETS[name]:g}x | "
            f"{'' if ratio is None else ('yes' if row['met'] else 'no')} | {_pct(other)} |"
        )
    return "\n".join(lines), rows


def detail_table(rows, arm) -> str:
    lines = [
        "| algo | armfarm update only | d3rlpy update only | ratio (update only) | armfarm compile s |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        a_u = r["armfarm_update_only"]
        d_u = r["d3rlpy_update_only"]
        lines.append(
            f"| {D3RLPY_NAMES[r['algo']]} | {_f(a_u)} | {_f(d_u)} | "
            f"{_r(a_u / d_u if a_u and d_u else None)} | {_f(arm.get(r['algo'], {}).get('compile_s'))} |"
        )
    return "\n".join(lines)


def _loadavg() -> str | None:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


def _pct(x):
    return "n/a" if x is None else f"{x:.0%}"


def _f(x):
    return "n/a" if x is None else f"{x:,.1f}"


def _r(x):
    return "n/a" if x is None else f"{x:.2f}x"


def main(argv=None) -> int:
    args = parse_args(argv)
    names = [a.strip().lower().replace("+", "").replace("_", "") for a in args.algos.split(",") if a.strip()]
    for n in names:
        if n not in ALGOS:
            raise SystemExit(f"unknown algo {n!r}; choose from {', '.join(ALGOS)}")
    if args.cpus:  # before JAX is imported: XLA sizes its thread pool from the affinity mask
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    command = "python " + shlex.join(["benchmarks/speed.py", *(sys.argv[1:] if argv is None else argv)])
    info = machine_info()

    # data first: its worker processes start before JAX is imported here
    if args.npz is not None:
        npz, dinfo = args.npz.resolve(), {"kind": "file", "cached": True, "generate_s": None}
    else:
        print(f"[speed] dataset: {args.data}, {args.transitions:,} transitions", file=sys.stderr, flush=True)
        npz, dinfo = make_dataset(args.data, args.transitions, args.seed)
    data = load_dataset(npz)
    dinfo.update(dataset_summary(data), path=str(npz))
    print(f"[speed] dataset ready: {npz} ({dinfo['episodes']:,} episodes)", file=sys.stderr, flush=True)

    import jax
    import jaxlib
    import numpy as np

    info.update(
        jax=jax.__version__,
        jaxlib=jaxlib.__version__,
        numpy=np.__version__,
        jax_backend=jax.default_backend(),
        jax_devices=[str(d) for d in jax.devices()],
    )
    try:
        import optax

        info["optax"] = optax.__version__
    except ImportError:
        pass

    quiet = (
        wait_for_quiet(args.wait_quiet, log=lambda m: print(f"[speed] {m}", file=sys.stderr, flush=True))
        if args.wait_quiet > 0
        else None
    )
    info["loadavg_at_start"] = _loadavg()
    info["foreign_cpu_share_before"] = quiet
    meter = CpuMeter()
    try:
        arm = bench_armfarm(names, data, args)
    except ImportError as e:  # armfarm.algos not there (yet): still measure d3rlpy
        print(f"[speed] armfarm.algos unavailable: {e!r}", file=sys.stderr, flush=True)
        arm = {"error": repr(e)}
    info["foreign_cpu_share_armfarm"] = meter.foreign_share()
    d3 = None
    if not args.skip_d3rlpy:
        del data  # the d3rlpy process loads its own copy
        meter = CpuMeter()
        d3 = bench_d3rlpy(names, npz, args)
        info["foreign_cpu_share_d3rlpy"] = meter.foreign_share()
        info.update(torch=d3["torch_version"], d3rlpy=d3["d3rlpy_version"], torch_threads=d3["torch_threads"])

    md, rows = table(names, arm, d3)
    details = detail_table(rows, arm)
    header = (
        f"Machine: {info['cpu_model']}, {info['usable_cpus']} cores, {info['memory_gib']} GiB; "
        f"jax {info['jax']} ({info['jax_backend']})"
        + (
            f", torch {info['torch']} ({info['torch_threads']} threads), d3rlpy {info['d3rlpy']}"
            if d3
            else ""
        )
        + f"\nData: {dinfo['kind']}, {dinfo['transitions']:,} transitions, {dinfo['episodes']:,} episodes; "
        f"batch {args.batch_size}, MLPs {args.hidden}, armfarm K={args.k} (CQL {args.k_cql}); median of {args.repeats} repeats, "
        f"each >= {args.seconds:g} s"
        + (f" and >= {args.steps} steps" if args.steps else "")
        + f"\narmfarm batches: {arm.get('sampler', 'n/a')}; d3rlpy batches: ReplayBuffer.sample_transition_batch"
        + "\nCPU taken by other processes (whole phase, incl. waits and discarded repeats): "
        + ", ".join(
            f"{phase} {_pct(info.get(f'foreign_cpu_share_{phase}'))}"
            for phase in ("before", "armfarm", "d3rlpy")
        )
        + f"\nCommand: {command}"
    )
    dirty = [
        r["algo"]
        for r in rows
        if r["foreign_cpu_share"] is not None and r["foreign_cpu_share"] > args.max_busy
    ]
    if dirty:
        header += (
            f"\nWARNING: other processes took more than {args.max_busy:.0%} of the CPU during accepted repeats of "
            f"{', '.join(dirty)} (retries ran out); those numbers are unreliable."
        )
    report = (
        f"{header}\n\n{md}\n\nReference, gradient step alone (pre-sampled batches, steps/s):\n\n{details}\n"
    )
    print(report)

    result = {
        "command": command,
        "machine": info,
        "dataset": dinfo,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "table": rows,
        "armfarm": arm,
        "d3rlpy": d3,
        "markdown": report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(report)
    print(f"[speed] wrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
