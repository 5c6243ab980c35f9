"""Evaluating a policy by rollouts in a Gymnasium environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from armfarm.envs.registry import make_env
from armfarm.envs.rollout import rollout_episode
from armfarm.evaluate.scores import normalized_score


@dataclass(frozen=True)
class EvalResult:
    """Returns of ``episodes`` evaluation rollouts, with the D4RL-normalised mean where defined."""

    env_id: str
    episodes: int
    return_mean: float
    return_std: float
    normalized: float | None
    returns: list[float]
    lengths: list[int]

    def to_json(self) -> dict:
        return asdict(self)


def evaluate_policy(
    policy: Callable, env_id: str, episodes: int = 10, seed: int = 0, progress: Callable | None = None,
    max_steps: int | None = None,
) -> EvalResult:
    """Roll out ``policy`` (obs -> action) for ``episodes`` episodes seeded ``seed, seed+1, ...``.

    A behaviour with ``reset(rng)`` (armfarm.envs.behavior: noise, per-episode choices) is reset before
    episode ``i`` with ``default_rng([seed, i])``, so an evaluation is repeatable and two policies
    evaluated with one seed meet the same starts. ``max_steps`` cuts episodes as the robots do.
    ``progress`` is called once per finished episode (e.g. to advance a progress bar).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_env(env_id)
    returns, lengths = [], []
    try:
        for i in range(episodes):
            if hasattr(policy, "reset"):
                policy.reset(np.random.default_rng([seed, i]))
            episode = rollout_episode(env, policy, seed=seed + i, max_steps=max_steps)
            returns.append(float(episode["rewards"].sum()))
            lengths.append(len(episode["actions"]))
            if progress is not None:
                progress()
    finally:
        env.close()
    mean = float(np.mean(returns))
    return EvalResult(
        env_id=env_id,
        episodes=episodes,
        return_mean=mean,
        return_std=float(np.std(returns)),
        normalized=normalized_score(env_id, mean),
        returns=returns,
        lengths=lengths,
    )
