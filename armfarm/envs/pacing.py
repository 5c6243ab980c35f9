"""Pacing a simulated robot to a control rate, as a real robot's loop runs (NumPy and Gymnasium only)."""

from __future__ import annotations

import time

import gymnasium as gym


class Paced(gym.Wrapper):
    """Makes ``step`` take at least ``1 / hz`` seconds of wall time (sleeping off the rest), so a simulated
    fleet uses the CPU a real one would leave free, and its data arrives at a real fleet's rate."""

    def __init__(self, env: gym.Env, hz: float):
        super().__init__(env)
        if hz <= 0:
            raise ValueError(f"a control rate must be > 0 Hz, got {hz}")
        self.period = 1.0 / hz
        self._next = 0.0

    def reset(self, **kwargs):
        self._next = time.monotonic() + self.period
        return self.env.reset(**kwargs)

    def step(self, action):
        result = self.env.step(action)
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next = max(self._next + self.period, time.monotonic())
        return result
