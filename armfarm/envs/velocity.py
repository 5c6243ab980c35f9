"""Velocity-limit tasks, the standard constrained-locomotion benchmark: a Gymnasium v5 MuJoCo robot whose
every step costs 1 when its forward velocity exceeds a per-robot threshold.

The thresholds are Safety-Gymnasium's ``Safety*Velocity-v1`` ones (``safety_gymnasium/tasks/safe_velocity/
safety_hopper_velocity_v1.py``: 0.7402 m/s; ``safety_half_cheetah_velocity_v1.py``: 3.2096 m/s), which
DSRL and OSRL use, and the cost is theirs: ``cost_t = 1[x_velocity_t > threshold]``, reported as
``info["cost"]``. Rewards, observations and termination are the v5 tasks' own (Safety-Gymnasium wraps v4,
which Gymnasium 1.x keeps only for compatibility), so returns are comparable with the unconstrained tasks.
"""

from __future__ import annotations

import gymnasium as gym

VELOCITY_THRESHOLDS = {"Hopper-v5": 0.7402, "HalfCheetah-v5": 3.2096}


class VelocityCost(gym.Wrapper):
    """Adds ``info["cost"] = 1[info["x_velocity"] > threshold]`` (and the threshold) to every step."""

    def __init__(self, env: gym.Env, threshold: float):
        super().__init__(env)
        if threshold <= 0:
            raise ValueError(f"velocity threshold must be > 0, got {threshold}")
        self.threshold = float(threshold)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        velocity = float(info["x_velocity"])
        info = {**info, "cost": float(velocity > self.threshold), "velocity_threshold": self.threshold}
        return obs, reward, terminated, truncated, info


def make_velocity_env(base_id: str, threshold: float | None = None, **kwargs) -> gym.Env:
    """``base_id`` (a v5 MuJoCo id with a threshold on record) with the velocity cost."""
    if base_id not in VELOCITY_THRESHOLDS:
        raise ValueError(f"no velocity threshold on record for {base_id!r}; known: {sorted(VELOCITY_THRESHOLDS)}")
    env = gym.make(base_id, **kwargs).unwrapped  # the TimeLimit is added by the registration
    return VelocityCost(env, VELOCITY_THRESHOLDS[base_id] if threshold is None else threshold)
