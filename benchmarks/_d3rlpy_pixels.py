"""d3rlpy half of the pixel benchmark (runs inside .venv-d3rlpy, never in the project's .venv).

    .venv-d3rlpy/bin/python benchmarks/_d3rlpy_pixels.py speed --shape 64,64,3 [--algos td3bc,iql,cql,bc]
    .venv-d3rlpy/bin/python benchmarks/_d3rlpy_pixels.py dotpoint DATA.npz [--seeds 0,1,2] [--steps 1000]

d3rlpy's own ``PixelEncoderFactory`` with DrQ's convolutions (four 3x3 convolutions of ``--channels``
filters, the first of stride 2; d3rlpy pads none, DrQ-style) and a dense layer of ``--features`` ReLU
units, observations scaled by ``PixelObservationScaler`` (x / 255), channels first as d3rlpy wants.
d3rlpy gives every network (actor, each critic, IQL's value, and their targets) an encoder of its own
and each head is one linear layer on the features: that is how a d3rlpy user trains from pixels.

* ``speed``: synthetic uint8 images and 6-d actions; ``algo.update`` on pre-sampled batches of
  ``--batch`` after 2 untimed steps, timed ``--repeats`` times for at least ``--seconds`` and one step;
  the median steps/s.
* ``dotpoint``: DATA.npz holds armfarm/DotPoint-v0 transitions (``observations (N, H, W, C)``,
  ``actions``, ``rewards``) and held-out ``eval_observations`` with their ``eval_targets``; each
  algorithm trains ``--steps`` steps (batch 64, step sizes 1e-3) and its return on the held-out images
  is ``-||pi(s) - p||`` (the task is one step, so no simulator is needed).

One JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ALGOS = ("td3bc", "iql", "cql", "bc")


def make_algo(name: str, channels: int, features: int, batch: int, lr: float | None):
    import d3rlpy
    from d3rlpy.models.encoders import PixelEncoderFactory
    from d3rlpy.preprocessing import PixelObservationScaler

    def enc():
        return PixelEncoderFactory(filters=[[channels, 3, 2], [channels, 3, 1], [channels, 3, 1], [channels, 3, 1]],
                                   feature_size=features)

    common = {"batch_size": batch, "observation_scaler": PixelObservationScaler()}
    lrs = {} if lr is None else ({"learning_rate": lr} if name == "bc" else {"actor_learning_rate": lr,
                                                                            "critic_learning_rate": lr})
    factories = {
        "bc": lambda: d3rlpy.algos.BCConfig(encoder_factory=enc(), **common, **lrs),
        "td3bc": lambda: d3rlpy.algos.TD3PlusBCConfig(actor_encoder_factory=enc(), critic_encoder_factory=enc(),
                                                      **common, **lrs),
        "cql": lambda: d3rlpy.algos.CQLConfig(actor_encoder_factory=enc(), critic_encoder_factory=enc(), **common, **lrs),
        "iql": lambda: d3rlpy.algos.IQLConfig(actor_encoder_factory=enc(), critic_encoder_factory=enc(),
                                              value_encoder_factory=enc(), **common, **lrs),
    }
    return factories[name]().create(device="cpu:0")


def dataset(obs, actions, rewards, terminals):
    import d3rlpy
    import numpy as np

    return d3rlpy.dataset.MDPDataset(observations=np.ascontiguousarray(obs.transpose(0, 3, 1, 2)),
                                     actions=actions.astype(np.float32), rewards=rewards.astype(np.float32),
                                     terminals=terminals.astype(np.float32),
                                     action_space=d3rlpy.ActionSpace.CONTINUOUS)


def count_params(algo) -> int:
    seen, total = set(), 0
    for field in vars(algo.impl.modules).values():
        for module in field if isinstance(field, (list, tuple)) else [field]:
            for p in getattr(module, "parameters", lambda: [])():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
    return total


def speed(args) -> dict:
    import numpy as np

    shape = tuple(int(d) for d in args.shape.split(","))
    rng = np.random.default_rng(0)
    n = 4 * args.batch
    obs = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    terminals = np.zeros(n)
    terminals[99::100] = 1
    data = dataset(obs, rng.uniform(-1, 1, (n, 6)), rng.random(n), terminals)
    out = {}
    for name in args.algos.split(","):
        algo = make_algo(name, args.channels, args.features, args.batch, None)
        algo.build_with_dataset(data)
        pool = [data.sample_transition_batch(args.batch) for _ in range(4)]
        for i in range(2):
            algo.update(pool[i])
        rates = []
        for _ in range(args.repeats):
            steps, t0 = 0, time.perf_counter()
            while steps < 1 or time.perf_counter() - t0 < args.seconds:
                algo.update(pool[steps % len(pool)])
                steps += 1
            rates.append(steps / (time.perf_counter() - t0))
        out[name] = {"steps_per_s": statistics.median(rates), "repeats": rates, "parameters": count_params(algo)}
        print(f"[d3rlpy] {name} {args.shape}: {out[name]['steps_per_s']:.3f} steps/s", file=sys.stderr, flush=True)
    return {"shape": list(shape), "batch": args.batch, "channels": args.channels, "features": args.features,
            "algos": out}


def dotpoint(args) -> dict:
    import d3rlpy
    import numpy as np

    data = np.load(args.npz)
    mdp = dataset(data["observations"], data["actions"], data["rewards"], np.ones(len(data["rewards"])))
    eval_obs = np.ascontiguousarray(data["eval_observations"].transpose(0, 3, 1, 2))
    out = {}
    for name in args.algos.split(","):
        out[name] = []
        for seed in (int(s) for s in args.seeds.split(",")):
            d3rlpy.seed(seed)
            algo = make_algo(name, args.channels, args.features, 64, 1e-3)
            algo.build_with_dataset(mdp)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                algo.update(mdp.sample_transition_batch(64))
            seconds = time.perf_counter() - t0
            actions = np.clip(algo.predict(eval_obs), -1.0, 1.0)
            ret = -float(np.mean(np.linalg.norm(actions - data["eval_targets"], axis=1)))
            out[name].append({"seed": seed, "return_mean": ret, "train_seconds": seconds})
            print(f"[d3rlpy] dotpoint {name} seed {seed}: {ret:.3f} in {seconds:.0f} s", file=sys.stderr, flush=True)
    return {"steps": args.steps, "channels": args.channels, "features": args.features, "algos": out}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=("speed", "dotpoint"))
    p.add_argument("npz", nargs="?")
    p.add_argument("--shape", default="64,64,3")
    p.add_argument("--algos", default=",".join(ALGOS))
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--features", type=int, default=256)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    real_stdout, sys.stdout = sys.stdout, sys.stderr  # d3rlpy logs to stdout; keep it for the JSON
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import d3rlpy
    import torch

    torch.set_num_threads(args.threads)
    result = speed(args) if args.part == "speed" else dotpoint(args)
    result.update({"d3rlpy_version": d3rlpy.__version__, "torch_version": torch.__version__,
                   "torch_threads": torch.get_num_threads()})
    real_stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
