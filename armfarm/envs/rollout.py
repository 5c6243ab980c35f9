"""Running one episode of a Gymnasium environment and recording it step by step."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np


def stack_observations(observations: list):
    """``T + 1`` observations (vectors or dicts of vectors) as one array, or a dict of arrays."""
    if isinstance(observations[0], dict):
        return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    return np.stack(observations)


def rollout_episode(env: gym.Env, act: Callable, seed: int | None, max_steps: int | None = None) -> dict:
    """Run ``act`` in ``env`` from ``reset(seed=seed)`` until it terminates or is truncated.

    Returns a dict with ``observations`` (T+1 rows, or a dict of such arrays), ``actions`` (T),
    ``rewards``, ``terminated``, ``truncated`` and ``costs`` (T; ``info["cost"]``, Safety-Gymnasium's
    convention, 0 where the environment reports none). ``max_steps`` cuts the episode early and marks
    its last step truncated.
    """
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, terminated, truncated, costs = [obs], [], [], [], [], []
    while True:
        action = np.asarray(act(obs), dtype=np.float32)
        obs, reward, term, trunc, info = env.step(action)
        costs.append(float(info.get("cost", 0.0)))
        if max_steps is not None and len(actions) + 1 >= max_steps:
            trunc = True
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        terminated.append(bool(term))
        truncated.append(bool(trunc) and not term)
        if term or trunc:
            break
    return {
        "observations": stack_observations(observations),
        "actions": np.stack(actions).astype(np.float32),
        "rewards": np.asarray(rewards, dtype=np.float32),
        "terminated": np.asarray(terminated, dtype=bool),
        "truncated": np.asarray(truncated, dtype=bool),
        "costs": np.asarray(costs, dtype=np.float32),
    }
