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

    Returns a dict with ``observations`` (T+1 rows, or a dict of such arrays), ``actions`` (T; float32,
    or int64 for a ``Discrete`` action space), ``rewards``, ``terminated``, ``truncated`` and ``costs``
    (T; ``info["cost"]``, Safety-Gymnasium's convention, 0 where the environment reports none), and
    ``end_reason`` ("" unless ``act`` stopped the episode). ``max_steps`` cuts the episode early and marks its last step truncated.

    A shielded ``act`` (:class:`armfarm.shield.ShieldedPolicy`) begins a fresh episode, is told each step's reward and cost
    (``observe``); its per-step ``last_intervention`` flags are returned as ``interventions``, and when its
    watchdog sets ``stop_reason`` the episode ends there, truncated, with that ``end_reason``.
    """
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, terminated, truncated, costs = [obs], [], [], [], [], []
    shielded = hasattr(act, "observe")
    if shielded:
        act.begin_episode()
    interventions: list[int] = []
    end_reason = ""
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    while True:
        action = np.int64(np.asarray(act(obs)).reshape(())) if discrete else np.asarray(act(obs), dtype=np.float32)
        if shielded:
            interventions.append(int(act.last_intervention))
        obs, reward, term, trunc, info = env.step(action)
        costs.append(float(info.get("cost", 0.0)))
        if shielded:
            act.observe(float(reward), costs[-1])
            if act.stop_reason and not term:
                trunc, end_reason = True, act.stop_reason
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
        "actions": np.stack(actions).astype(np.int64 if discrete else np.float32),
        "rewards": np.asarray(rewards, dtype=np.float32),
        "terminated": np.asarray(terminated, dtype=bool),
        "truncated": np.asarray(truncated, dtype=bool),
        "costs": np.asarray(costs, dtype=np.float32),
        **({"interventions": np.asarray(interventions, dtype=np.uint8)} if shielded else {}),
        "end_reason": end_reason,
    }
