"""``armfarm/ReacherFragile-v0``: Gymnasium's Reacher-v5 arm in a room with things it can break.

The arm (two links, 0.1 m and 0.11 m, on a table) must bring its fingertip to a target, as in Reacher-v5
(same observation, action and reward). Three kinds of damage each cost 1 on the step where they happen
(``info["cost"]`` is 1 when any of them does; ``info["cost_dishes"]``, ``info["cost_window"]`` and
``info["cost_joints"]`` say which):

* **Dishes.** Two dishes (discs of radius ``dish_radius``) stand beside the target, one on each side, at
  ``dish_offset`` along the tangent of the target's circle about the base. The fingertip touching a dish
  breaks it. So does moving fast near them: inside ``zone_radius`` of the target the fingertip may move
  at most ``tip_speed_limit`` m/s.
* **Window.** The half-plane ``y < window_y`` is a window pane; the fingertip crossing into it breaks it.
  Targets are drawn only where the arm can reach them without crossing (``y >= window_y + 0.04``).
* **Self-damage.** A joint turning faster than ``joint_speed_limit`` rad/s strains the motor.

A uniformly random policy breaks something on most steps; :class:`CarefulReacher`, a joint-space planner
with speed limits, reaches the targets without breaking anything (``tests/envs/test_damage.py``). The
episode is 100 steps (2 s; Reacher-v5 gives 50), time for a careful arm to get there.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

LINKS = (0.1, 0.11)  # Reacher-v5's link lengths: shoulder to elbow, elbow to fingertip
ELBOW_RANGE = 2.9  # rad; Reacher-v5's elbow joint is limited to ±3.0


@dataclass(frozen=True)
class FragileLimits:
    """Where the breakable things are and how much they take (metres, seconds, radians)."""

    dish_radius: float = 0.02
    dish_offset: float = 0.05
    zone_radius: float = 0.06
    tip_speed_limit: float = 0.5
    window_y: float = -0.12
    joint_speed_limit: float = 12.0

    def dishes(self, target: np.ndarray) -> np.ndarray:
        """``(2, 2)`` centres of the dishes beside ``target``."""
        target = np.asarray(target, np.float64)[:2]
        radial = target / max(float(np.linalg.norm(target)), 1e-9)
        tangent = np.array([-radial[1], radial[0]])
        return np.stack([target + self.dish_offset * tangent, target - self.dish_offset * tangent])


def fingertip(q: np.ndarray) -> np.ndarray:
    """Forward kinematics: the fingertip's ``(x, y)`` for joint angles ``q`` (``(..., 2)``)."""
    q = np.asarray(q, np.float64)
    elbow = q[..., 0]
    tip = q[..., 0] + q[..., 1]
    return np.stack([LINKS[0] * np.cos(elbow) + LINKS[1] * np.cos(tip),
                     LINKS[0] * np.sin(elbow) + LINKS[1] * np.sin(tip)], axis=-1)


class ReacherFragile(gym.Wrapper):
    """Reacher-v5 with the costs of :class:`FragileLimits` (see the module docstring)."""

    def __init__(self, env: gym.Env, limits: FragileLimits = FragileLimits()):
        super().__init__(env)
        self.limits = limits
        self._tip = np.zeros(2)

    def _goal_ok(self, goal: np.ndarray) -> bool:
        radius = float(np.linalg.norm(goal))
        return 0.05 <= radius <= 0.19 and goal[1] >= self.limits.window_y + 0.04

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        base = self.env.unwrapped
        goal = base.data.qpos[-2:].copy()
        while not self._goal_ok(goal):  # redraw out-of-bounds targets from the environment's own generator
            goal = base.np_random.uniform(-0.2, 0.2, size=2)
        qpos, qvel = base.data.qpos.copy(), base.data.qvel.copy()
        qpos[-2:] = goal
        base.goal = goal
        base.set_state(qpos, qvel)
        self._tip = base.get_body_com("fingertip")[:2].copy()
        return base._get_obs(), {**info, "dishes": self.limits.dishes(goal)}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        base, limits = self.env.unwrapped, self.limits
        tip = base.get_body_com("fingertip")[:2].copy()
        goal = base.get_body_com("target")[:2]
        speed = float(np.linalg.norm(tip - self._tip)) / base.dt
        self._tip = tip
        touching = float(np.min(np.linalg.norm(limits.dishes(goal) - tip, axis=1))) < limits.dish_radius
        rushing = float(np.linalg.norm(tip - goal)) < limits.zone_radius and speed > limits.tip_speed_limit
        terms = {
            "cost_dishes": float(touching or rushing),
            "cost_window": float(tip[1] < limits.window_y),
            "cost_joints": float(np.max(np.abs(base.data.qvel[:2])) > limits.joint_speed_limit),
        }
        info = {**info, **terms, "cost": max(terms.values()), "tip_speed": speed,
                "distance": float(np.linalg.norm(tip - goal))}
        return obs, reward, terminated, truncated, info


def make_reacher_fragile(**kwargs) -> gym.Env:
    """Reacher-v5 (unwrapped; the registration adds the time limit) with the fragile room."""
    limits = FragileLimits(**{k: kwargs.pop(k) for k in list(kwargs) if k in FragileLimits.__dataclass_fields__})
    return ReacherFragile(gym.make("Reacher-v5", **kwargs).unwrapped, limits)


class CarefulReacher:
    """A hand-written careful policy for ReacherFragile: plan a path in joint space that keeps the fingertip
    clear of the dishes and the window, then follow it under the speed limits.

    The plan is a breadth-first search on a ``grid``-by-``grid`` discretisation of the two joint angles
    (wrapping at ±pi), from the current angles to the nearer of the two inverse-kinematics solutions for
    the target; cells whose fingertip is within ``margin`` of a dish or of the window are blocked. The
    controller turns each joint toward the next waypoint at up to ``fast`` rad/s, and ``slow`` rad/s once
    the fingertip is near the target, with a damped proportional torque. It reads only the observation.
    """

    policy_id = "careful-reacher"

    def __init__(self, limits: FragileLimits = FragileLimits(), grid: int = 72, margin: float = 0.015,
                 fast: float = 6.0, slow: float = 1.2):
        self.limits, self.grid, self.margin, self.fast, self.slow = limits, grid, margin, fast, slow
        self._target: np.ndarray | None = None
        self._path: list[np.ndarray] = []

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self._target, self._path = None, []

    def _angles(self, cells: np.ndarray) -> np.ndarray:
        return -np.pi + (np.asarray(cells) + 0.5) * (2 * np.pi / self.grid)

    def _cell(self, q: np.ndarray) -> tuple[int, int]:
        wrapped = (np.asarray(q) + np.pi) % (2 * np.pi)
        return tuple(np.minimum((wrapped / (2 * np.pi) * self.grid).astype(int), self.grid - 1))

    def _plan(self, q: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
        i, j = np.meshgrid(np.arange(self.grid), np.arange(self.grid), indexing="ij")
        tips = fingertip(np.stack([self._angles(i), self._angles(j)], axis=-1))
        dishes = self.limits.dishes(target)
        near_dish = np.min(np.linalg.norm(tips[..., None, :] - dishes, axis=-1), axis=-1)
        blocked = (near_dish < self.limits.dish_radius + self.margin) | (tips[..., 1] < self.limits.window_y + self.margin)
        blocked |= np.abs(self._angles(j)) > ELBOW_RANGE  # the elbow is a limited hinge: it cannot wrap
        goals = [self._cell(g) for g in inverse_kinematics(target)]
        start = self._cell(q)
        blocked[start] = False
        parent = {start: None}
        queue = deque([start])
        found = None
        while queue:
            cell = queue.popleft()
            if cell in goals:
                found = cell
                break
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)):
                nxt = ((cell[0] + di) % self.grid, (cell[1] + dj) % self.grid)
                if nxt not in parent and not blocked[nxt]:
                    parent[nxt] = cell
                    queue.append(nxt)
        path = []
        while found is not None:
            path.append(self._angles(np.array(found)))
            found = parent[found]
        return path[::-1][1:]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float64)
        q = np.arctan2(obs[2:4], obs[0:2])
        qvel, target = obs[6:8], obs[4:6]
        if self._target is None or not np.allclose(target, self._target):
            self._target, self._path = target.copy(), self._plan(q, target)
        tip = fingertip(q)
        near = float(np.linalg.norm(tip - target)) < self.limits.zone_radius + 0.03
        while self._path and np.max(np.abs(_wrap(self._path[0] - q))) < 0.12:
            self._path.pop(0)
        if self._path:
            aim = self._path[0]
        else:  # last leg: the exact IK solution closest to the current angles
            aim = min(inverse_kinematics(target), key=lambda g: float(np.abs(_wrap(g - q)).sum()))
        vmax = self.slow if near else self.fast
        desired = np.clip(8.0 * _wrap(aim - q), -vmax, vmax)
        return np.clip(0.15 * (desired - qvel), -1.0, 1.0).astype(np.float32)


def inverse_kinematics(target: np.ndarray) -> list[np.ndarray]:
    """The (up to two) joint-angle pairs that put the fingertip at ``target``."""
    x, y = float(target[0]), float(target[1])
    l1, l2 = LINKS
    c = np.clip((x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2), -1.0, 1.0)
    out = []
    for elbow in (np.arccos(c), -np.arccos(c)):
        shoulder = np.arctan2(y, x) - np.arctan2(l2 * np.sin(elbow), l1 + l2 * np.cos(elbow))
        out.append(_wrap(np.array([shoulder, elbow])))
    return out


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi
