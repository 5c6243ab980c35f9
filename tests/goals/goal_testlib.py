"""A 2-D point task with a known answer for the goal-conditioned learners, and its data.

The point moves ``s' = clip(s + STEP * a, -1, 1)`` with ``a`` in [-1, 1]^2; a goal is reached within
``RADIUS``. Full speed towards the goal reaches any goal within ``LIMIT`` steps. The data is mixed:
most episodes are uniformly random actions, a few head for a random target at full speed with noise.
Imitating it on hindsight goals (GCBC) averages mostly random actions and crawls; a goal-conditioned
value function (GCIQL) learns that full speed towards the goal is best.
"""

from __future__ import annotations

import numpy as np

from armfarm.data import TransitionDataset

STEP, RADIUS, LIMIT = 0.1, 0.1, 30


def step(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.clip(s + STEP * np.clip(a, -1, 1), -1, 1)


def mixed_dataset(episodes: int = 400, length: int = 50, expert_frac: float = 0.2, seed: int = 0) -> TransitionDataset:
    rng = np.random.default_rng(seed)
    obs, act, nxt = [], [], []
    for e in range(episodes):
        s = rng.uniform(-1, 1, 2)
        expert = e < expert_frac * episodes
        target = rng.uniform(-1, 1, 2)
        for _ in range(length):
            if expert:
                a = np.clip(np.sign(target - s) * (np.abs(target - s) > 0.05) + rng.normal(0, 0.3, 2), -1, 1)
                if np.linalg.norm(target - s) < RADIUS:
                    target = rng.uniform(-1, 1, 2)
            else:
                a = rng.uniform(-1, 1, 2)
            s2 = step(s, a)
            obs.append(s), act.append(a), nxt.append(s2)
            s = s2
    n = episodes * length
    timeouts = np.zeros(n)
    timeouts[length - 1::length] = 1
    return TransitionDataset.from_arrays(np.array(obs), np.array(act), np.zeros(n), np.array(nxt), np.zeros(n),
                                         timeouts=timeouts, episode_starts=np.arange(0, n, length))


def success_rate(act, trials: int = 100, seed: int = 1) -> float:
    """Share of random (start, goal) pairs at least 0.8 apart that ``act(obs, goal)`` reaches within LIMIT."""
    rng = np.random.default_rng(seed)
    reached = 0
    for _ in range(trials):
        while True:
            s, g = rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2)
            if np.linalg.norm(s - g) > 0.8:
                break
        for _ in range(LIMIT):
            s = step(s, act(s.astype(np.float32), g.astype(np.float32)))
            if np.linalg.norm(s - g) < RADIUS:
                reached += 1
                break
    return reached / trials
