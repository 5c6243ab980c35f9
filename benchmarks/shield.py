"""The shield against reward-only policies on the damage tasks: cost and return with and without it.

    .venv/bin/python benchmarks/shield.py [--tasks reacher,hopper] [--out benchmarks/results/shield.json]

For each task:

1. **Data with unsafe behaviour.** ``reacher``: 300 ReacherFragile episodes, 70% by the careful planner
   with action noise 0.1 and 30% uniformly random (which break things). ``hopper``: 100
   HopperVelocity episodes of a SAC policy trained for reward only (the hopper-medium behaviour run in the
   dataset cache, or one trained here), with action noise 0.1-0.3: it runs fast, so it is often above the
   velocity limit.
2. **Reward-only policies.** IQL trained on that data (``--iql-steps``); online SAC (``reacher``: trained
   here for ``--sac-steps`` environment steps; ``hopper``: the behaviour SAC itself).
3. **The shield**, fitted on the data (``armfarm shield fit``'s defaults but ``--shield-steps`` and the
   fallback named below), and each policy evaluated with and without it on the same ``--episodes``
   seeds: return, cost (damage events per episode), interventions per episode.
4. **Cost of the shield per action**: median over 5 repeats of the time of ``Shield.filter`` on 2,000
   observations of the data, in NumPy, one at a time (as a robot calls it).

Targets (the issue's): cost down by at least 90% with at least 80% of the unshielded return kept.
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

OUT = HERE / "_out" / "shield"


class Mixed:
    """Careful planner with action noise, or (a ``wild`` share of episodes) uniformly random actions."""

    policy_id = "careful-or-wild"

    def __init__(self, wild: float, noise: float):
        from armfarm.envs.fragile import CarefulReacher

        self.careful, self.wild_share, self.noise = CarefulReacher(), wild, noise

    def reset(self, rng):
        self.rng, self.wild = rng, rng.uniform() < self.wild_share
        self.careful.reset(rng)

    def __call__(self, obs):
        if self.wild:
            return self.rng.uniform(-1, 1, 2).astype(np.float32)
        return np.clip(self.careful(obs) + self.noise * self.rng.normal(size=2), -1, 1).astype(np.float32)


def collect(env_id: str, store: Path, behavior, episodes: int, seed: int = 0) -> None:
    from armfarm.actors import Actor, StoreSink
    from armfarm.data import EpisodeStore, StoreSpec
    from armfarm.envs.registry import make_env

    if store.exists():
        return
    env = make_env(env_id)
    target = EpisodeStore(store, create=True, spec=StoreSpec.from_gymnasium(env.observation_space, env.action_space))
    with StoreSink(target) as sink:
        Actor(env, behavior, sink, env_id, seed=seed).run(range(episodes))


def timing(shield, obs: np.ndarray, actions: np.ndarray) -> float:
    """Median µs of one ``Shield.filter`` call over 5 repeats of ``len(obs)`` calls."""
    runs = []
    for _ in range(5):
        tick = time.perf_counter()
        for o, a in zip(obs, actions, strict=True):
            shield.filter(o, a)
        runs.append((time.perf_counter() - tick) / len(obs) * 1e6)
    return float(np.median(runs))


def evaluate_pair(policy, shield, env_id: str, episodes: int, plain=None) -> dict:
    """``policy`` with and without ``shield`` on the same seeds (``plain``: its unshielded result, if known)."""
    from armfarm.evaluate.rollouts import evaluate_policy

    plain = plain or evaluate_policy(policy, env_id, episodes=episodes, seed=100_000)
    guarded = evaluate_policy(shield.wrap(policy), env_id, episodes=episodes, seed=100_000)
    out = {"return": plain.return_mean, "return_std": plain.return_std, "cost": plain.cost_mean,
           "shielded_return": guarded.return_mean, "shielded_return_std": guarded.return_std,
           "shielded_cost": guarded.cost_mean, "interventions_per_episode": guarded.interventions_mean}
    out["cost_reduction"] = None if plain.cost_mean == 0 else 1 - guarded.cost_mean / plain.cost_mean
    out["return_kept"] = None if plain.return_mean == 0 else guarded.return_mean / plain.return_mean
    return out


def variant(shield_dir: Path, budget: float, project: bool) -> Path:
    """A copy of ``shield_dir`` with another cost budget and projection switch, edited in ``shield.json``
    as a user would (no refit: the models are the same)."""
    import shutil

    target = shield_dir.parent / f"{shield_dir.name}-b{budget:g}{'-project' if project else ''}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(shield_dir, target)
    config = json.loads((target / "shield.json").read_text())
    config["cost"] |= {"budget": budget, "project": project}
    (target / "shield.json").write_text(json.dumps(config, indent=2))
    return target


def run_task(task: str, args) -> dict:
    from armfarm.data import TransitionDataset
    from armfarm.envs.behavior import BehaviorSpec, make_behavior
    from armfarm.envs.registry import make_env
    from armfarm.online import train_online
    from armfarm.policy import NumpyPolicy
    from armfarm.shield import Shield
    from armfarm.shield.fit import fit_shield
    from armfarm.train import train

    work = OUT / task
    work.mkdir(parents=True, exist_ok=True)
    if task == "reacher":
        env_id = "armfarm/ReacherFragile-v0"
        collect(env_id, work / "store", Mixed(wild=0.3, noise=0.1), 300)
        sac_dir = work / "sac"
        if not (sac_dir / "policy.npz").exists():
            train_online("sac", env_id, sac_dir, steps=args.sac_steps, eval_episodes=5, overwrite=True)
        sac = NumpyPolicy.load(sac_dir / "policy.npz")
    else:
        env_id = "armfarm/HopperVelocity-v0"
        sac_path = Path(args.hopper_sac)
        env = make_env(env_id)

        class Noisy:
            policy_id = "sac-noisy"

            def __init__(self):
                self.inner = make_behavior(BehaviorSpec(str(sac_path), 0.0), env)

            def reset(self, rng):
                self.rng, self.noise = rng, rng.uniform(0.1, 0.3)

            def __call__(self, obs):
                return np.clip(self.inner(obs) + self.noise * self.rng.normal(size=3), -1, 1).astype(np.float32)

        if args.hopper_store is None:
            collect(env_id, work / "store", Noisy(), 100)
        sac = NumpyPolicy.load(sac_path)
    store = work / "store" if task == "reacher" or args.hopper_store is None else Path(args.hopper_store)
    iql_dir = work / ("iql" if store == work / "store" else "iql-on-given-store")
    if not (iql_dir / "policy.npz").exists():
        train("iql", store, iql_dir, steps=args.iql_steps, overwrite=True)
    iql = NumpyPolicy.load(iql_dir / "policy.npz")
    results = {"env_id": env_id, "store": str(store), "fallbacks": {}}
    data = TransitionDataset.from_store(store)
    results["data"] = {"episodes": len(data.episode_starts), "transitions": data.size,
                       "cost_per_episode": float(data.episode_costs.mean()),
                       "return_per_episode": float(data.episode_returns.mean())}
    rng = np.random.default_rng(0)
    idx = rng.choice(data.size, 2000, replace=False)
    from armfarm.evaluate.rollouts import evaluate_policy

    policies = {"iql": iql, "sac": sac}
    plain = {name: evaluate_policy(policy, env_id, episodes=args.episodes, seed=100_000)
             for name, policy in policies.items()}
    for named in args.fallbacks.split(","):
        label, _, fallback = named.rpartition("=") if "=" in named else (named, "", named)
        shield_dir = work / f"shield-{label}"
        tick = time.perf_counter()
        config = fit_shield(store, shield_dir, steps=args.shield_steps, fallback=fallback,
                            budget=args.budget, overwrite=True)
        fit_s = time.perf_counter() - tick
        for budget in args.budgets:
            for project in args.project:
                shield = Shield.load(variant(shield_dir, budget, project))
                key = f"{label} budget={budget:g}" + (" project" if project else "")
                block = {"fallback": fallback, "budget": budget, "project": project, "fit_s": fit_s,
                         "support_threshold": config.support.threshold,
                         "us_per_action": timing(shield, data.observations[idx], data.actions[idx])}
                for name, policy in policies.items():
                    block[name] = evaluate_pair(policy, shield, env_id, args.episodes, plain[name])
                    print(f"[shield] {task} {key} {name}: {json.dumps(block[name])}", flush=True)
                results["fallbacks"][key] = block
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="reacher,hopper")
    p.add_argument("--fallbacks", default="stop,bc", help="stop, bc, a policy path, or LABEL=PATH; comma-separated")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--iql-steps", type=int, default=10_000)
    p.add_argument("--sac-steps", type=int, default=30_000)
    p.add_argument("--shield-steps", type=int, default=5000)
    p.add_argument("--budget", type=float, default=0.5, help="the budget the shields are fitted with")
    p.add_argument("--budgets", type=lambda v: [float(x) for x in v.split(",")], default=None,
                   help="cost budgets to evaluate each fitted shield at (default: --budget)")
    p.add_argument("--project", type=lambda v: [x == "on" for x in v.split(",")], default=[False],
                   help="off, on or off,on: replace refused actions by the fallback's, or project them")
    p.add_argument("--hopper-sac", default=str(Path.home() / ".cache/armfarm/behavior/Hopper-v5-sac-medium-s0-n300000"
                                                "/policy.npz"))
    p.add_argument("--hopper-store", default=None,
                   help="fit on this HopperVelocity store (e.g. benchmarks/safe_velocity.py's) instead of building one")
    p.add_argument("--out", type=Path, default=HERE / "results" / "shield.json")
    args = p.parse_args(argv)
    args.budgets = args.budgets or [args.budget]
    import jax

    report = {"command": "python benchmarks/shield.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": {"cpu_model": cpu_model(), "python": platform.python_version(), "jax": jax.__version__},
              "settings": vars(args) | {"out": str(args.out)}, "tasks": {}}
    for task in args.tasks.split(","):
        report["tasks"][task] = run_task(task, args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
