"""Evaluating a policy by rollouts in a Gymnasium environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from armfarm.envs import default_cost_budget
from armfarm.envs.registry import make_env
from armfarm.envs.rollout import rollout_episode
from armfarm.evaluate.scores import normalized_score


@dataclass(frozen=True)
class EvalResult:
    """Returns and costs of ``episodes`` evaluation rollouts, with the D4RL-normalised mean return where
    defined and the normalised cost (mean cost / budget, DSRL's measure; at most 1 is within budget) where a
    budget is known."""

    env_id: str
    episodes: int
    return_mean: float
    return_std: float
    normalized: float | None
    returns: list[float]
    lengths: list[int]
    cost_mean: float = 0.0
    cost_std: float = 0.0
    costs: list[float] = field(default_factory=list)
    cost_budget: float | None = None
    normalized_cost: float | None = None
    interventions_mean: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def evaluate_policy(
    policy: Callable, env_id: str, episodes: int = 10, seed: int = 0, progress: Callable | None = None,
    max_steps: int | None = None, cost_budget: float | None = None,
) -> EvalResult:
    """Roll out ``policy`` (obs -> action) for ``episodes`` episodes seeded ``seed, seed+1, ...``.

    Costs are the environment's ``info["cost"]`` summed per episode; ``cost_budget`` (default: the task's
    own, :func:`armfarm.envs.default_cost_budget`) gives the normalised cost. A policy that counts its
    shield's interventions (``interventions_in_episode()``) has their mean reported.

    A behaviour with ``reset(rng)`` (armfarm.envs.behavior: noise, per-episode choices) is reset before
    episode ``i`` with ``default_rng([seed, i])``, so an evaluation is repeatable and two policies
    evaluated with one seed meet the same starts. ``max_steps`` cuts episodes as the robots do.
    ``progress`` is called once per finished episode (e.g. to advance a progress bar).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    return summarize_rollouts(env_id, rollout_stats(policy, env_id, range(episodes), seed, max_steps, progress),
                              cost_budget)


def rollout_stats(policy: Callable, env_id: str, indices, seed: int = 0, max_steps: int | None = None,
                  progress: Callable | None = None) -> dict[str, list[float]]:
    """Episodes ``indices`` of an evaluation (each independent of the others, as :func:`evaluate_policy`
    seeds them), as lists ``returns``, ``lengths``, ``costs`` and ``interventions``; evaluations split
    into several calls (e.g. parallel tasks) and concatenated in index order equal one call."""
    env = make_env(env_id)
    out: dict[str, list[float]] = {"returns": [], "lengths": [], "costs": [], "interventions": []}
    try:
        for i in indices:
            if hasattr(policy, "reset"):
                policy.reset(np.random.default_rng([seed, i]))
            episode = rollout_episode(env, policy, seed=seed + i, max_steps=max_steps)
            out["returns"].append(float(episode["rewards"].sum()))
            out["lengths"].append(len(episode["actions"]))
            out["costs"].append(float(episode["costs"].sum(dtype=np.float64)))
            if hasattr(policy, "interventions_in_episode"):
                out["interventions"].append(float(policy.interventions_in_episode()))
            if progress is not None:
                progress()
    finally:
        env.close()
    return out


def summarize_rollouts(env_id: str, stats: dict[str, list[float]], cost_budget: float | None = None) -> EvalResult:
    """The :class:`EvalResult` of :func:`rollout_stats`' lists."""
    returns, costs, interventions = stats["returns"], stats["costs"], stats["interventions"]
    mean, cost_mean = float(np.mean(returns)), float(np.mean(costs))
    budget = default_cost_budget(env_id) if cost_budget is None else float(cost_budget)
    return EvalResult(
        env_id=env_id,
        episodes=len(returns),
        return_mean=mean,
        return_std=float(np.std(returns)),
        normalized=normalized_score(env_id, mean),
        returns=list(returns),
        lengths=list(stats["lengths"]),
        cost_mean=cost_mean,
        cost_std=float(np.std(costs)),
        costs=list(costs),
        cost_budget=budget,
        normalized_cost=None if not budget else cost_mean / budget,
        interventions_mean=float(np.mean(interventions)) if interventions else 0.0,
    )
