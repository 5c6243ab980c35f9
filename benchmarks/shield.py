"""The shield against reward-only policies on the damage tasks: cost and return with and without it.

    .venv/bin/python benchmarks/shield.py [--tasks reacher,hopper] [--out benchmarks/results/shield.json]

For each task:

1. **Data with unsafe behaviour.** ``reacher``: 300 ReacherFragile episodes, 70% by the careful planner
   with action noise 0.1 and 30% uniformly random (which break things). ``hopper`` / ``halfcheetah``: a
   velocity-task store given with ``--hopper-store`` / ``--halfcheetah-store`` (``safe_velocity.py``'s), or
   100 episodes of a SAC policy trained for reward only (``--hopper-sac`` / ``--halfcheetah-sac``) with
   action noise 0.1-0.3: it runs fast, so it is often above the velocity limit.
2. **Reward-only policies.** IQL trained on that data (``--iql-steps``); online SAC (``reacher``: trained
   here for ``--sac-steps`` environment steps; the velocity tasks: that reward-only SAC).
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
VELOCITY_TASKS = {"hopper": "armfarm/HopperVelocity-v0", "halfcheetah": "armfarm/HalfCheetahVelocity-v0"}


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


def collect(env_id: str, store: Path, parts: list, seed: int = 0) -> None:
    """Record ``parts`` (``(behaviour, episodes)`` pairs, in order) into a new store at ``store``."""
    from armfarm.actors import Actor, StoreSink
    from armfarm.data import EpisodeStore, StoreSpec
    from armfarm.envs.registry import make_env

    if store.exists():
        return
    env = make_env(env_id)
    target = EpisodeStore(store, create=True, spec=StoreSpec.from_gymnasium(env.observation_space, env.action_space))
    start = 0
    with StoreSink(target) as sink:
        for behavior, episodes in parts:
            Actor(env, behavior, sink, env_id, seed=seed + start).run(range(start, start + episodes))
            start += episodes


class Noisy:
    """A policy file's action plus Gaussian noise whose std is drawn per episode from ``noise``."""

    def __init__(self, path: Path, env, noise: tuple[float, float], name: str = "sac-noisy"):
        from armfarm.envs.behavior import BehaviorSpec, make_behavior

        self.inner = make_behavior(BehaviorSpec(str(path), 0.0), env)
        self.env, self.noise_range, self.policy_id = env, noise, name

    def reset(self, rng):
        self.rng, self.noise = rng, rng.uniform(*self.noise_range)

    def __call__(self, obs):
        noise = self.noise * self.rng.normal(size=self.env.action_space.shape)
        return np.clip(self.inner(obs) + noise, -1, 1).astype(np.float32)


def timing(shield, obs: np.ndarray, actions: np.ndarray) -> float:
    """Median µs of one ``Shield.filter`` call over 5 repeats of ``len(obs)`` calls."""
    runs = []
    for _ in range(5):
        tick = time.perf_counter()
        for o, a in zip(obs, actions, strict=True):
            shield.filter(o, a)
        runs.append((time.perf_counter() - tick) / len(obs) * 1e6)
    return float(np.median(runs))


def evaluate_pair(policy, shield, env_id: str, episodes: int, seed: int, plain, random_return: float) -> dict:
    """``policy`` behind ``shield`` against ``plain`` (its unshielded result on the same seeds).
    ``return_kept`` is the shielded return over the plain one; ``return_kept_above_random`` measures both
    from the uniform-random policy's return, which is what "share of the return" means on a task whose
    returns are negative (Reacher's)."""
    from armfarm.evaluate.rollouts import evaluate_policy

    guarded = evaluate_policy(shield.wrap(policy), env_id, episodes=episodes, seed=seed)
    out = {"return": plain.return_mean, "return_std": plain.return_std, "cost": plain.cost_mean,
           "shielded_return": guarded.return_mean, "shielded_return_std": guarded.return_std,
           "shielded_cost": guarded.cost_mean, "interventions_per_episode": guarded.interventions_mean}
    out["cost_reduction"] = None if plain.cost_mean == 0 else 1 - guarded.cost_mean / plain.cost_mean
    out["return_kept"] = None if plain.return_mean == 0 else guarded.return_mean / plain.return_mean
    gain = plain.return_mean - random_return
    out["return_kept_above_random"] = None if gain <= 0 else (guarded.return_mean - random_return) / gain
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
    from armfarm.evaluate.rollouts import evaluate_policy
    from armfarm.online import train_online
    from armfarm.policy import NumpyPolicy
    from armfarm.shield import Shield
    from armfarm.shield.fit import fit_shield
    from armfarm.train import train

    work = OUT / task
    work.mkdir(parents=True, exist_ok=True)
    if task == "reacher":
        env_id = "armfarm/ReacherFragile-v0"
        sac_dir = work / "sac"
        if not (sac_dir / "policy.npz").exists():
            train_online("sac", env_id, sac_dir, steps=args.sac_steps, eval_episodes=5, overwrite=True)
        sac = NumpyPolicy.load(sac_dir / "policy.npz")
        parts = [(Mixed(wild=0.3, noise=0.1), 300)]
        if args.reacher_own_episodes:  # the reward-only SAC's own mistakes, as a farm's store holds them
            parts.append((Noisy(sac_dir / "policy.npz", make_env(env_id), (0.0, 0.2)), args.reacher_own_episodes))
        reacher_store = work / ("store" if not args.reacher_own_episodes else f"store-own{args.reacher_own_episodes}")
        collect(env_id, reacher_store, parts)
    else:
        env_id = VELOCITY_TASKS[task]
        sac_path = Path(getattr(args, f"{task}_sac"))
        if getattr(args, f"{task}_store") is None:
            collect(env_id, work / "store", [(Noisy(sac_path, make_env(env_id), (0.1, 0.3)), 100)])
        sac = NumpyPolicy.load(sac_path)
    given = reacher_store if task == "reacher" else getattr(args, f"{task}_store")
    store = work / "store" if given is None else Path(given)
    iql_dir = work / ("iql" if store == work / "store" else f"iql-on-{store.name}")
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
    policies = {"iql": iql, "sac": sac}
    plain = {name: evaluate_policy(policy, env_id, episodes=args.episodes, seed=args.eval_seed)
             for name, policy in policies.items()}
    random_return = evaluate_policy(make_behavior(BehaviorSpec("random", 0.0), make_env(env_id)), env_id,
                                    episodes=args.episodes, seed=args.eval_seed).return_mean
    results["random_return"] = random_return
    for named in args.fallbacks.split(","):
        label, _, fallback = named.rpartition("=") if "=" in named else (named, "", named)
        for gamma in args.gammas:
            shield_dir = work / f"shield-{label}-g{gamma:g}"
            tick = time.perf_counter()
            config = fit_shield(store, shield_dir, steps=args.shield_steps, fallback=fallback, gamma=gamma,
                                budget=args.budget, overwrite=True)
            fit_s = time.perf_counter() - tick
            for budget in args.budgets:
                for project in args.project:
                    shield = Shield.load(variant(shield_dir, budget, project))
                    key = f"{label} gamma={gamma:g} budget={budget:g}" + (" project" if project else "")
                    block = {"fallback": fallback, "gamma": gamma, "budget": budget, "project": project,
                             "fit_s": fit_s, "support_threshold": config.support.threshold,
                             "us_per_action": timing(shield, data.observations[idx], data.actions[idx])}
                    for name, policy in policies.items():
                        block[name] = evaluate_pair(policy, shield, env_id, args.episodes, args.eval_seed,
                                                    plain[name], random_return)
                        print(f"[shield] {task} {key} {name}: {json.dumps(block[name])}", flush=True)
                    results["fallbacks"][key] = block
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="reacher,hopper", help="reacher, hopper, halfcheetah; comma-separated")
    p.add_argument("--fallbacks", default="stop,bc", help="stop, bc, a policy path, or LABEL=PATH; comma-separated")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--reacher-own-episodes", type=int, default=0,
                   help="add this many episodes of the reward-only SAC (noise 0-0.2) to the Reacher data")
    p.add_argument("--iql-steps", type=int, default=10_000)
    p.add_argument("--sac-steps", type=int, default=30_000)
    p.add_argument("--shield-steps", type=int, default=5000)
    p.add_argument("--budget", type=float, default=0.5, help="the budget the shields are fitted with")
    p.add_argument("--gammas", type=lambda v: [float(x) for x in v.split(",")], default=[0.8],
                   help="cost-critic discounts to fit a shield with (each fallback, each gamma)")
    p.add_argument("--eval-seed", type=int, default=100_000, help="first evaluation seed (the same for every arm)")
    p.add_argument("--budgets", type=lambda v: [float(x) for x in v.split(",")], default=None,
                   help="cost budgets to evaluate each fitted shield at (default: --budget)")
    p.add_argument("--project", type=lambda v: [x == "on" for x in v.split(",")], default=[False],
                   help="off, on or off,on: replace refused actions by the fallback's, or project them")
    p.add_argument("--hopper-sac", default=str(Path.home() / ".cache/armfarm/behavior/Hopper-v5-sac-medium-s0-n300000"
                                                "/policy.npz"))
    p.add_argument("--halfcheetah-sac", default=str(HERE / "_out/safe_velocity_halfcheetah/sac-unlimited/policy.npz"))
    for robot in VELOCITY_TASKS:
        p.add_argument(f"--{robot}-store", default=None, help=f"fit on this {robot} velocity store (e.g. "
                       "benchmarks/safe_velocity.py's) instead of building one from the noisy SAC")
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
