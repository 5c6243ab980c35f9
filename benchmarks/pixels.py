"""Learners from pixels on this CPU: training speed beside the matmul ceiling, im2col against XLA's
convolution, the robot-side policy's latency, and the frame sampler from RAM and from mapped shards.

    .venv/bin/python benchmarks/pixels.py [--parts speed,latency,sampler] [--seconds 5] [--repeats 3]

* **speed**: ``dqn`` with each encoder (``drq``, ``impala``) on 64x64x3 and MinAtar-sized 10x10x4
  images at batch 256: steps/s of the fused update (K steps per call, compile excluded, the median of
  ``--repeats``), FLOPs per step from XLA's cost analysis, and the ceiling: the float32 FLOP rate of a
  chain of ``[4096, 256] @ [256, 256]`` products measured in the same run (the shape of an im2col
  matmul), so ceiling steps/s = rate / FLOPs. The same update with ``lax.conv_general_dilated`` in
  place of im2col is timed beside it on 32x32 and 10x10 images.
* **continuous**: the same measurement for ``td3bc``, ``iql``, ``cql`` and ``bc`` with the DrQ encoder
  in front (:func:`armfarm.algos.core.pixels.with_encoder`; 6 action dimensions) on 64x64x3 and
  10x10x4 images.
* **latency**: the published NumPy policy's time per action for one image (median of 200 calls).
* **sampler**: batches/s of :class:`FrameSampler` with the frames in RAM and memory-mapped, on a
  synthetic 64x64x3 store, with ``frame_stack`` 1 and 4.
* **quadrant**: ``armfarm/QuadrantDot-v0`` (a one-step bandit from 16x16 images): 2000 uniform-random
  episodes collected, then ``dqn``, ``discrete_cql`` and ``discrete_bc`` trained on them (3 seeds, 2000
  steps, ``encoder_channels=8``, ``lr=1e-3``) and evaluated on 200 episodes, beside ``eval random``.
* **dotpoint**: ``armfarm/DotPoint-v0`` (point at a dot in a 16x16 image; reward ``-||a - p||``): 2000
  uniform-random episodes, then ``td3bc``, ``iql``, ``cql`` and ``bc`` from the images (3 seeds, 1000
  steps, batch 64, ``hidden=(64, 64)``, ``encoder_channels=8``, step sizes 1e-3), 200 evaluation
  episodes; and the same from states (``armfarm/DotPointState-v0``: the dot's row and column).
* **d3rlpy** (after ``continuous`` and ``dotpoint`` in the same run): d3rlpy 2.8.1's ``td3bc``, ``iql``,
  ``cql`` and ``bc`` with its ``PixelEncoderFactory`` set to DrQ's convolutions (``_d3rlpy_pixels.py``,
  in ``.venv-d3rlpy``): steps/s at 64x64x3 and ``--batch``, beside ours; and DotPoint on the same
  store's transitions, scored on 200 held-out images.
* **memory** (not in the default parts; needs ``--memory-gb`` of free disk): a synthetic store of
  84x84x3 frames ``--memory-gb`` large (default 1.5x this machine's RAM), then, in a fresh process,
  ``dqn`` trained from it through ``armfarm.train`` for ``--memory-steps`` steps: peak anonymous memory
  (``VmHWM`` minus file-backed pages is not exposed, so ``RssAnon`` is sampled every 0.2 s), peak
  RSS, and the sampler's batches/s from the cold mapped shards.

Results go to benchmarks/results/pixels.json and markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cpumeter import cores, cpu_model  # noqa: E402
from ceiling import matmul_rate  # noqa: E402

HERE = Path(__file__).resolve().parent
SHAPES = {"64x64x3": (64, 64, 3), "32x32x3": (32, 32, 3), "10x10x4": (10, 10, 4)}
XLA_CONV_SHAPES = ("32x32x3", "10x10x4")  # XLA's own convolution is timed on these (at 64x64 it takes minutes a call)
CONTINUOUS_ALGOS = ("td3bc", "iql", "cql", "bc")
CONTINUOUS_SHAPES = ("64x64x3", "10x10x4")


CONTINUOUS_ACT_DIM = 6  # the continuous learners act in [-1, 1]^6 (DMC cheetah's action size)


def _stats(shape, discrete: bool = True):
    import numpy as np

    from armfarm.algos import DatasetStats

    d, a = int(np.prod(shape)), 1 if discrete else CONTINUOUS_ACT_DIM
    low, high = ([0], [5]) if discrete else ([-1.0] * a, [1.0] * a)
    return DatasetStats(obs_dim=d, act_dim=a, obs_mean=np.zeros(d), obs_std=np.ones(d), action_low=low,
                        action_high=high, obs_shape=shape, return_range=None if discrete else 100.0)


def _batches(shape, k: int, b: int, seed: int, discrete: bool = True):
    import numpy as np

    rng = np.random.default_rng(seed)
    actions = (rng.integers(0, 6, (k, b, 1)) if discrete else rng.uniform(-1, 1, (k, b, CONTINUOUS_ACT_DIM)))
    return {"observations": rng.integers(0, 256, (k, b, *shape), dtype=np.uint8),
            "next_observations": rng.integers(0, 256, (k, b, *shape), dtype=np.uint8),
            "actions": actions.astype(np.float32),
            "rewards": rng.random((k, b), dtype=np.float32), "terminals": np.zeros((k, b), np.float32)}


def _xla_conv(x, w, stride):
    import jax

    return jax.lax.conv_general_dilated(x, w, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def train_speed(encoder: str, shape, batch: int, k: int, seconds: float, repeats: int, conv: str,
                algo_name: str = "dqn") -> dict:
    import jax
    import numpy as np

    import armfarm.nets.conv as conv_module
    from armfarm.algos import get_algorithm, make_train_fn
    from armfarm.algos.core import fused

    original = conv_module.conv_im2col
    if conv == "xla":
        conv_module.conv_im2col = _xla_conv
    try:
        fused._jitted_train.cache_clear()
        algo = get_algorithm(algo_name)
        config = algo.config_cls(encoder=encoder, batch_size=batch)
        state = algo.init(config, _stats(shape, algo.discrete), 0)
        one = {key: v[0] for key, v in _batches(shape, 1, batch, 0, algo.discrete).items()}
        cost = jax.jit(lambda s, b: algo.update(config, s, b)).lower(state, one).compile().cost_analysis()
        flops = float((cost[0] if isinstance(cost, list) else cost)["flops"])
        fn = make_train_fn(algo, config)
        data = _batches(shape, k, batch, 1, algo.discrete)
        state, _ = fn(state, data)
        jax.block_until_ready(state)
        rates = []
        for _ in range(repeats):
            steps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                state, metrics = fn(state, data)
                jax.device_get(metrics)
                steps += k
            rates.append(steps / (time.perf_counter() - t0))
        trained = [group["params"] for group in state.values() if isinstance(group, dict) and "params" in group]
        params = sum(int(np.size(x)) for x in jax.tree.leaves(trained))
    finally:
        conv_module.conv_im2col = original
        fused._jitted_train.cache_clear()
    return {"algo": algo_name, "encoder": encoder, "shape": list(shape), "batch": batch, "conv": conv, "flops_per_step": flops,
            "steps_per_s": statistics.median(rates), "repeats": rates, "parameters": params}


def latency(encoder: str, shape, calls: int = 200) -> dict:
    import numpy as np

    from armfarm.algos import get_algorithm

    algo = get_algorithm("dqn")
    config = algo.config_cls(encoder=encoder)
    policy = algo.export_policy(config, algo.init(config, _stats(shape), 0))
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    policy(image)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        policy(image)
        times.append(time.perf_counter() - t0)
    return {"encoder": encoder, "shape": list(shape), "median_ms": 1e3 * statistics.median(times),
            "p95_ms": 1e3 * float(np.quantile(times, 0.95))}


def sampler(frames: int, batch: int, seconds: float) -> list[dict]:
    import gymnasium as gym
    import numpy as np

    from armfarm.data import Episode, EpisodeStore, FrameSampler, StoreSpec

    shape = SHAPES["64x64x3"]
    root = Path(tempfile.mkdtemp(prefix="pixels-sampler-"))
    spec = StoreSpec.from_gymnasium(gym.spaces.Box(0, 255, shape, np.uint8), gym.spaces.Discrete(6))
    store = EpisodeStore(root / "store", create=True, spec=spec)
    rng, T = np.random.default_rng(0), 500
    for _ in range(frames // (T + 1)):
        store.write([Episode(rng.integers(0, 256, (T + 1, *shape), dtype=np.uint8), rng.integers(0, 6, T),
                             np.zeros(T, np.float32), np.zeros(T, bool), np.r_[np.zeros(T - 1, bool), True])])
    rows = []
    for stack in (1, 4):
        for in_memory in (True, False):
            fs = FrameSampler.from_store(store, frame_stack=stack, in_memory=in_memory)
            g = np.random.default_rng(1)
            fs.sample(g, batch)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                fs.sample(g, batch)
                n += 1
            rate = n / (time.perf_counter() - t0)
            rows.append({"frame_stack": stack, "in_memory": in_memory, "batches_per_s": rate,
                         "mb_per_s": rate * batch * 2 * int(np.prod(shape)) * stack / 1e6, "transitions": fs.size})
    return rows


_MEMORY_CHILD = """
import json, sys, threading, time
from pathlib import Path
peak = {"anon_kb": 0, "rss_kb": 0}
def status():
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["RssAnon"].split()[0]), int(fields["VmRSS"].split()[0])
def watch():
    while True:
        anon, rss = status()
        peak["anon_kb"], peak["rss_kb"] = max(peak["anon_kb"], anon), max(peak["rss_kb"], rss)
        time.sleep(0.2)
threading.Thread(target=watch, daemon=True).start()
import numpy as np
from armfarm.data import FrameSampler
from armfarm.train import train
store, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
fs = FrameSampler.from_store(store)
opened = time.perf_counter() - t0
g, n, t0 = np.random.default_rng(0), 0, time.perf_counter()
while time.perf_counter() - t0 < 20:
    fs.sample(g, 32)
    n += 1
rate = n / (time.perf_counter() - t0)
fs.close()
summary = train("dqn", store, out, steps=steps, steps_per_call=25, overwrite=True)
time.sleep(0.5)
print(json.dumps({"in_memory": fs.in_memory, "frames": fs.size, "open_seconds": opened, "cold_batches_per_s": rate,
                  "train_steps_per_s": summary["grad_steps_per_s"], "peak_anon_mb": peak["anon_kb"] / 1024,
                  "peak_rss_mb": peak["rss_kb"] / 1024}))
"""


def memory(gigabytes: float, steps: int, where: Path) -> dict:
    """The larger-than-RAM run (see the module docstring)."""
    import os
    import subprocess

    import gymnasium as gym
    import numpy as np

    from armfarm.data import Episode, EpisodeStore, StoreSpec

    shape, T = (84, 84, 3), 1000
    store_path = where / "store"
    if not (store_path / "store.json").exists():
        spec = StoreSpec.from_gymnasium(gym.spaces.Box(0, 255, shape, np.uint8), gym.spaces.Discrete(6))
        store = EpisodeStore(store_path, create=True, spec=spec)
        rng = np.random.default_rng(0)
        block = np.frombuffer(rng.bytes((T + 1) * int(np.prod(shape))), np.uint8).reshape(T + 1, *shape)
        episodes = int(gigabytes * 1e9 // block.nbytes)
        t0 = time.perf_counter()
        for e in range(0, episodes, 2):
            store.write([Episode(block + np.uint8((e + i) % 256), rng.integers(0, 6, T), rng.random(T).astype(np.float32),
                                 np.zeros(T, bool), np.r_[np.zeros(T - 1, bool), True]) for i in range(2)])
            if e % 100 == 0:
                print(f"  memory: {e}/{episodes} episodes, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    size = sum(f.stat().st_size for f in store_path.rglob("*.arrow"))
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    child = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(store_path), str(where / "run"), str(steps)],
                           capture_output=True, text=True, env=env, check=True)
    row = json.loads(child.stdout.strip().splitlines()[-1])
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {**row, "store_gb": size / 1e9, "ram_gb": ram / 1e9, "store_over_ram": size / ram, "steps": steps}


def quadrant(where: Path, seeds=(0, 1, 2), steps: int = 2000) -> dict:
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec, load_policy_or_random
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.policy import NumpyPolicy
    from armfarm.train import train

    env_id, store = "armfarm/QuadrantDot-v0", where / "store"
    if not (store / "store.json").exists():
        collect(env_id, store, BehaviorSpec("random"), episodes=2000)
    rows = {"random": [evaluate_policy(load_policy_or_random("random", env_id), env_id, 200, seed=5).return_mean]}
    for algo in ("dqn", "discrete_cql", "discrete_bc"):
        rows[algo] = []
        for seed in seeds:
            train(algo, store, where / f"{algo}-s{seed}", steps=steps, seed=seed, overwrite=True,
                  config_overrides={"encoder_channels": 8, "lr": 1e-3})
            policy = NumpyPolicy.load(where / f"{algo}-s{seed}" / "policy.npz")
            rows[algo].append(evaluate_policy(policy, env_id, 200, seed=5).return_mean)
    return rows


def dotpoint(where: Path, seeds=(0, 1, 2), steps: int = 1000) -> dict:
    """``armfarm/DotPoint-v0`` (continuous actions from 16x16 images) and the same task from states
    (``armfarm/DotPointState-v0``): the continuous learners on 2000 uniform-random episodes of each,
    evaluated on 200 episodes, beside the random policy."""
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec, load_policy_or_random
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.policy import NumpyPolicy
    from armfarm.train import train

    result = {}
    for observed, env_id, store in (("pixels", "armfarm/DotPoint-v0", where / "store"),
                                    ("states", "armfarm/DotPointState-v0", where / "store-states")):
        if not (store / "store.json").exists():
            collect(env_id, store, BehaviorSpec("random"), episodes=2000)
        rows = {"random": [evaluate_policy(load_policy_or_random("random", env_id), env_id, 200, seed=5).return_mean]}
        for algo in CONTINUOUS_ALGOS:
            lrs = {"lr": 1e-3} if algo == "bc" else {"actor_lr": 1e-3, "critic_lr": 1e-3}
            rows[algo] = []
            for seed in seeds:
                print(f"dotpoint {observed} {algo} seed {seed} ...", file=sys.stderr, flush=True)
                run = where / f"{observed}-{algo}-s{seed}"
                train(algo, store, run, steps=steps, seed=seed, overwrite=True, config_overrides={
                    "batch_size": 64, "hidden": (64, 64), "encoder_channels": 8, "encoder_lr": 1e-3, **lrs})
                rows[algo].append(evaluate_policy(NumpyPolicy.load(run / "policy.npz"), env_id, 200, seed=5).return_mean)
        result[observed] = rows
    return result


def d3rlpy_side(where: Path, batch: int, seconds: float, repeats: int) -> dict:
    """d3rlpy 2.8.1's pixel learners (``_d3rlpy_pixels.py`` in ``.venv-d3rlpy``, made by
    ``d3rlpy_env.sh``): speed at 64x64x3 and batch ``batch``, and DotPoint from the same store as
    :func:`dotpoint`, scored on 200 held-out images."""
    import subprocess

    import gymnasium as gym
    import numpy as np

    import armfarm.envs  # noqa: F401  (registers DotPoint)
    from armfarm.data import EpisodeStore

    python = subprocess.run(["bash", str(HERE / "d3rlpy_env.sh")], capture_output=True, text=True,
                            check=True).stdout.strip().splitlines()[-1]
    script = str(HERE / "_d3rlpy_pixels.py")

    def run(*argv) -> dict:
        out = subprocess.run([python, script, *argv], capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    print("d3rlpy speed 64x64x3 ...", file=sys.stderr, flush=True)
    result = {"speed": run("speed", "--shape", "64,64,3", "--batch", str(batch), "--seconds", str(seconds),
                           "--repeats", str(repeats))}
    episodes = list(EpisodeStore(where / "store").iter_episodes())
    env = gym.make("armfarm/DotPoint-v0")
    held_out = [env.reset(seed=10_000 + i) for i in range(200)]
    npz = where / "dotpoint-d3rlpy.npz"
    np.savez(npz, observations=np.stack([e.observations[0] for e in episodes]),
             actions=np.stack([e.actions[0] for e in episodes]),
             rewards=np.array([e.rewards[0] for e in episodes], np.float32),
             eval_observations=np.stack([o for o, _ in held_out]),
             eval_targets=np.stack([info["target"] for _, info in held_out]))
    print("d3rlpy dotpoint ...", file=sys.stderr, flush=True)
    result["dotpoint"] = run("dotpoint", str(npz), "--channels", "8", "--features", "64")
    return result


def beside_ceiling(rows: list[dict], args) -> list[dict]:
    """``rows`` of :func:`train_speed` with the matmul ceiling measured now (median of 3), printed as a table."""
    rate = statistics.median(matmul_rate(4096, max(2.0, args.seconds / 2)) for _ in range(3))
    for r in rows:
        r["matmul_gflops"] = rate / 1e9
        r["ceiling_steps_per_s"] = rate / r["flops_per_step"]
        r["fraction"] = r["steps_per_s"] / r["ceiling_steps_per_s"]
    print(f"\n{cpu_model()}, {cores()} cores; batch {args.batch}, K={args.k}; matmul {rate / 1e9:.1f} GFLOP/s")
    print("| learner | encoder | images | conv | params | MFLOP/step | ceiling steps/s | steps/s | fraction |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['algo']} | {r['encoder']} | {'x'.join(map(str, r['shape']))} | {r['conv']} | {r['parameters']:,} | "
              f"{r['flops_per_step'] / 1e6:.0f} | {r['ceiling_steps_per_s']:.1f} | {r['steps_per_s']:.2f} | "
              f"{r['fraction']:.0%} |")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="speed,latency,sampler")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--k", type=int, default=4, help="gradient steps per fused call")
    p.add_argument("--frames", type=int, default=20_000, help="frames in the sampler's synthetic store")
    p.add_argument("--memory-gb", type=float, default=None, help="size of the memory part's store (default 1.5x RAM)")
    p.add_argument("--memory-steps", type=int, default=200)
    p.add_argument("--memory-dir", type=Path, default=HERE / "_out" / "pixels-memory")
    p.add_argument("--out", type=Path, default=HERE / "results" / "pixels.json")
    args = p.parse_args(argv)
    parts = args.parts.split(",")
    report: dict = {"cpu": cpu_model(), "cores": cores(), "settings": {k: str(v) for k, v in vars(args).items()}}
    if "speed" in parts:
        rows = []
        for name, shape in SHAPES.items():
            for encoder in ("drq", "impala"):
                for conv in ("im2col", "xla") if name in XLA_CONV_SHAPES else ("im2col",):
                    print(f"speed {encoder} {name} {conv} ...", file=sys.stderr, flush=True)
                    rows.append(train_speed(encoder, shape, args.batch, args.k, args.seconds, args.repeats, conv))
        report["speed"] = beside_ceiling(rows, args)
    if "continuous" in parts:
        rows = []
        for name in CONTINUOUS_SHAPES:
            for algo in CONTINUOUS_ALGOS:
                print(f"continuous {algo} drq {name} ...", file=sys.stderr, flush=True)
                rows.append(train_speed("drq", SHAPES[name], args.batch, args.k, args.seconds, args.repeats, "im2col",
                                        algo_name=algo))
        report["continuous"] = beside_ceiling(rows, args)
    if "latency" in parts:
        report["latency"] = [latency(e, s) for s in SHAPES.values() for e in ("drq", "impala")]
        print("\n| encoder | image | NumPy policy median ms/action | p95 ms |\n|---|---|---:|---:|")
        for r in report["latency"]:
            print(f"| {r['encoder']} | {'x'.join(map(str, r['shape']))} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} |")
    if "sampler" in parts:
        report["sampler"] = sampler(args.frames, args.batch, args.seconds)
        print("\n| frame_stack | frames from | batches/s | MB/s of images |\n|---|---|---:|---:|")
        for r in report["sampler"]:
            where = "RAM" if r["in_memory"] else "mapped shards"
            print(f"| {r['frame_stack']} | {where} | {r['batches_per_s']:.1f} | {r['mb_per_s']:.0f} |")
    if "quadrant" in parts:
        r = report["quadrant"] = quadrant(HERE / "_out" / "pixels-quadrant")
        print("\n| policy | success (mean ± std over seeds) | seeds |\n|---|---:|---:|")
        for name, values in r.items():
            print(f"| {name} | {statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f} | {len(values)} |")
    if "dotpoint" in parts:
        r = report["dotpoint"] = dotpoint(HERE / "_out" / "pixels-dotpoint")
        print("\n| policy | from pixels (mean ± std over seeds) | from states |\n|---|---:|---:|")
        for name, values in r["pixels"].items():
            states = r["states"][name]
            print(f"| {name} | {statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f} | "
                  f"{statistics.mean(states):.3f} ± {statistics.pstdev(states):.3f} |")
    if "d3rlpy" in parts:
        r = report["d3rlpy"] = d3rlpy_side(HERE / "_out" / "pixels-dotpoint", args.batch, args.seconds, args.repeats)
        ours = {row["algo"]: row["steps_per_s"] for row in report.get("continuous", []) if row["shape"] == [64, 64, 3]}
        print(f"\n64x64x3, batch {args.batch}: steps/s\n| learner | armfarm | d3rlpy | ratio |\n|---|---:|---:|---:|")
        for name, row in r["speed"]["algos"].items():
            mine = ours.get(name)
            ratio = f"{mine / row['steps_per_s']:.1f}x" if mine else "-"
            print(f"| {name} | {mine if mine else '-'} | {row['steps_per_s']:.3f} | {ratio} |")
        print("\n| d3rlpy on DotPoint | return (mean ± std over seeds) |\n|---|---:|")
        for name, runs in r["dotpoint"]["algos"].items():
            values = [x["return_mean"] for x in runs]
            print(f"| {name} | {statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f} |")
    if "memory" in parts:
        import os

        gigabytes = args.memory_gb or 1.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
        r = report["memory"] = memory(gigabytes, args.memory_steps, args.memory_dir)
        print(f"\nstore {r['store_gb']:.1f} GB = {r['store_over_ram']:.2f}x RAM ({r['ram_gb']:.1f} GB); frames in RAM: "
              f"{r['in_memory']}; peak anonymous memory {r['peak_anon_mb']:.0f} MB, peak RSS {r['peak_rss_mb']:.0f} MB; "
              f"cold sampler {r['cold_batches_per_s']:.1f} batches/s of 32; dqn {r['train_steps_per_s']} steps/s")
    if args.out.exists():  # keep the parts not run this time
        report = {**json.loads(args.out.read_text()), **report}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
