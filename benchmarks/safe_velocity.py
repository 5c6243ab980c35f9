"""Constrained against unconstrained offline RL on a locally built velocity-limit dataset (DSRL-style).

    .venv/bin/python benchmarks/safe_velocity.py [--robot hopper|halfcheetah] [--sac-steps 60000]
        [--steps 10000] [--seeds 0,1,2] [--algos bc,td3bc,iql,iqllag] [--budget 20]
        [--out benchmarks/results/safe_velocity.json]

1. **Behaviours with several velocity limits**, as DSRL built its datasets from policies trained under
   several cost thresholds. DSRL used constrained online learners; here each limited behaviour is SAC
   trained on the robot's velocity task (``armfarm/HopperVelocity-v0`` or ``armfarm/HalfCheetahVelocity-v0``)
   with the reward ``r - w * 1[x_velocity > v_lim]`` (a fixed penalty, ``w = --penalty``) for each ``v_lim``
   of ``--limits``, plus a reward-only SAC (for Hopper the dataset cache's ``hopper-medium`` behaviour when
   it is there; otherwise one trained here with no penalty).
2. **The dataset**: ``--episodes`` episodes of each behaviour on the real task (its reward and its cost
   ``1[x_velocity > threshold]``: 0.7402 for Hopper, 3.2096 for HalfCheetah), with Gaussian action noise
   drawn per episode from 0.05-0.3.
3. **Learners**, each for ``--steps`` gradient steps at its paper defaults, over ``--seeds`` (all seeds
   in one compiled call, ``train_seeds``): the unconstrained ``bc``, ``td3bc``, ``iql`` and the
   constrained ``iqllag`` with ``cost_budget = --budget`` per 1000-step episode.
4. **Evaluation** of each seed's deterministic policy over ``--eval-episodes`` episodes of the task:
   D4RL-normalised return (the robot's D4RL references: the rewards are the v5 tasks') and normalised cost
   (episode cost / budget, DSRL's measure; <= 1 is within budget).

Every stage's output is kept under ``--work`` (``benchmarks/_out/safe_velocity`` for Hopper,
``benchmarks/_out/safe_velocity_halfcheetah``) and reused when the script runs again.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _cpumeter import cpu_model  # noqa: E402

OUT = HERE / "_out"
CACHED_SAC = Path.home() / ".cache/armfarm/behavior/Hopper-v5-sac-medium-s0-n300000/policy.npz"
ROBOTS = {  # base task, velocity task, the limits of the behaviours, the work directory's name
    "hopper": ("Hopper-v5", "armfarm/HopperVelocity-v0", [0.5, 1.0], "safe_velocity"),
    "halfcheetah": ("HalfCheetah-v5", "armfarm/HalfCheetahVelocity-v0", [1.5, 3.0], "safe_velocity_halfcheetah"),
}


def penalised_id(base: str, limit: float, penalty: float) -> str:
    """Register (once) and return the training task whose reward pays ``penalty`` per step above ``limit``."""
    import gymnasium as gym

    import armfarm.envs  # noqa: F401  (registers the velocity task)

    env_id = f"armfarm-bench/{base.split('-')[0]}Penalised-l{limit:g}-w{penalty:g}-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=_make_penalised, max_episode_steps=1000,
                     kwargs={"base": base, "limit": limit, "penalty": penalty})
    return env_id


def _make_penalised(base: str, limit: float, penalty: float):
    import gymnasium as gym

    from armfarm.envs.velocity import make_velocity_env

    class Penalised(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward - penalty * float(info["x_velocity"] > limit), terminated, truncated, info

    return Penalised(make_velocity_env(base))


class NoisyPolicy:
    """A policy file's deterministic action plus Gaussian noise whose std is drawn per episode."""

    def __init__(self, path: Path, name: str, noise: tuple[float, float]):
        from armfarm.policy import NumpyPolicy

        self.policy, self.policy_id, self.noise_range = NumpyPolicy.load(path), name, noise

    def reset(self, rng):
        self.rng, self.noise = rng, rng.uniform(*self.noise_range)

    def __call__(self, obs):
        action = self.policy(np.asarray(obs, np.float32)) + self.noise * self.rng.normal(size=self.policy.act_dim)
        return np.clip(action, -1, 1).astype(np.float32)


def behaviours(args) -> dict[str, Path]:
    from armfarm.online import train_online

    found = {}
    fast = Path(args.fast_sac)
    if args.robot != "hopper" or not fast.exists():
        fast = args.work / "sac-unlimited" / "policy.npz"
        if not fast.exists():
            train_online("sac", args.base, fast.parent, steps=args.sac_steps, eval_episodes=5, overwrite=True)
    found["unlimited"] = fast
    for limit in args.limits:
        run = args.work / f"sac-limit-{limit:g}"
        if not (run / "policy.npz").exists():
            tick = time.perf_counter()
            train_online("sac", penalised_id(args.base, limit, args.penalty), run, steps=args.sac_steps, eval_episodes=5,
                         overwrite=True)
            print(f"[safe_velocity] SAC with limit {limit:g}: {time.perf_counter() - tick:.0f} s", flush=True)
        found[f"limit-{limit:g}"] = run / "policy.npz"
    return found


def build_store(found: dict[str, Path], args) -> Path:
    from armfarm.actors import Actor, StoreSink
    from armfarm.data import EpisodeStore, StoreSpec
    from armfarm.envs.registry import make_env

    store = args.work / "store"
    if store.exists():
        return store
    env = make_env(args.task)
    target = EpisodeStore(store, create=True, spec=StoreSpec.from_gymnasium(env.observation_space, env.action_space))
    with StoreSink(target) as sink:
        for i, (name, path) in enumerate(found.items()):
            actor = Actor(env, NoisyPolicy(path, f"sac-{name}", (0.05, 0.3)), sink, args.task, seed=1000 * i)
            actor.run(range(i * args.episodes, (i + 1) * args.episodes))
    return store


def describe(store: Path, budget: float, base: str) -> dict:
    from armfarm.data import TransitionDataset
    from armfarm.evaluate.scores import normalized_score

    data = TransitionDataset.from_store(store)
    costs, returns = data.episode_costs, data.episode_returns
    lengths = np.diff(np.append(data.episode_starts, data.size))
    return {"episodes": len(returns), "transitions": int(data.size),
            "return_mean": float(returns.mean()), "normalized_return_mean": normalized_score(base, returns.mean()),
            "cost_mean": float(costs.mean()), "normalized_cost_mean": float(costs.mean() / budget),
            "within_budget_share": float(np.mean(costs <= budget)), "length_mean": float(lengths.mean())}


def evaluate_run(policy_path: Path, args) -> dict:
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.evaluate.scores import normalized_score
    from armfarm.policy import NumpyPolicy

    result = evaluate_policy(NumpyPolicy.load(policy_path), args.task, episodes=args.eval_episodes, seed=100_000,
                             cost_budget=args.budget)
    return {"return": result.return_mean, "normalized_return": normalized_score(args.base, result.return_mean),
            "cost": result.cost_mean, "normalized_cost": result.normalized_cost}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", choices=sorted(ROBOTS), default="hopper")
    p.add_argument("--sac-steps", type=int, default=60_000)
    p.add_argument("--limits", type=lambda s: [float(x) for x in s.split(",")], default=None,
                   help="velocity limits of the behaviours (default: 0.5,1.0 for Hopper, 1.5,3.0 for HalfCheetah)")
    p.add_argument("--penalty", type=float, default=2.0)
    p.add_argument("--episodes", type=int, default=60, help="episodes per behaviour")
    p.add_argument("--fast-sac", default=str(CACHED_SAC), help="Hopper's reward-only behaviour, if it exists")
    p.add_argument("--algos", default="bc,td3bc,iql,iqllag")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--budget", type=float, default=20.0)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<work name>.json")
    p.add_argument("--work", type=Path, default=None, help="where behaviours, the store and the runs are kept")
    args = p.parse_args(argv)
    args.base, args.task, default_limits, name = ROBOTS[args.robot]
    args.limits = args.limits or default_limits
    args.work = args.work or OUT / name
    args.out = args.out or HERE / "results" / f"{name}.json"
    import jax

    from armfarm.train import train_seeds

    args.work.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    report = {"command": "python benchmarks/safe_velocity.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": {"cpu_model": cpu_model(), "python": platform.python_version(), "jax": jax.__version__},
              "settings": vars(args) | {"out": str(args.out)}, "behaviours": {}, "algos": {}}
    found = behaviours(args)
    for name, path in found.items():
        report["behaviours"][name] = {"policy": str(path), **evaluate_run(path, args)}
        print(f"[safe_velocity] behaviour {name}: {report['behaviours'][name]}", flush=True)
    store = build_store(found, args)
    report["data"] = describe(store, args.budget, args.base)
    print(f"[safe_velocity] data: {report['data']}", flush=True)
    for algo in args.algos.split(","):
        run = args.work / "runs" / f"{algo}-n{args.steps}"
        overrides = {"cost_budget": args.budget, "episode_length": 1000} if algo == "iqllag" else None
        tick = time.perf_counter()
        if not (run / "summary.json").exists():
            train_seeds(algo, store, run, seeds, steps=args.steps, config_overrides=overrides, overwrite=True)
        per_seed = {s: evaluate_run(run / f"seed_{s}" / "policy.npz", args) for s in seeds}
        block = {"train_and_eval_s": time.perf_counter() - tick, "seeds": per_seed}
        for key in ("normalized_return", "normalized_cost"):
            values = np.array([r[key] for r in per_seed.values()])
            block[key] = {"mean": float(values.mean()), "std": float(values.std())}
        report["algos"][algo] = block
        print(f"[safe_velocity] {algo}: return {block['normalized_return']} cost {block['normalized_cost']}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
