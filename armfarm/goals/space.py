"""The goal space of a goal-conditioned task: which part of an observation is the goal, how a policy
sees an observation together with a goal, and when a goal counts as reached.

Two layouts, matching the two kinds of data armfarm stores:

* **Flat states** (OGBench's environments). The goal is a state, projected onto ``dims`` (default:
  every dimension, OGBench's convention of full-state goals). A policy's input is the observation
  with the projected goal appended: ``[s, g]``.
* **Dict observations** with ``achieved_goal`` and ``desired_goal`` (Gymnasium-Robotics). The goal is
  the ``achieved_goal`` entry of a state, and a policy's input is the flattened observation (keys in
  sorted order) with the goal written into the ``desired_goal`` slot. The deployed policy then takes the
  environment's observation dict as it is.

A goal ``g`` is reached at state ``s`` when ``||project(s) - g|| <= threshold``; with ``threshold = 0``
only the goal's own state reaches it (OGBench's training reward, which compares indices).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

ACHIEVED, DESIRED = "achieved_goal", "desired_goal"


@dataclasses.dataclass(frozen=True)
class GoalSpace:
    """``dims``: indices of the flattened observation that form a goal; ``slot``: ``(start, stop)`` of the
    flattened observation that holds the desired goal (dict layout), or None (the goal is appended);
    ``threshold``: the success radius in goal space."""

    obs_dim: int
    dims: tuple[int, ...]
    slot: tuple[int, int] | None = None
    threshold: float = 0.0

    def __post_init__(self) -> None:
        if not self.dims or min(self.dims) < 0 or max(self.dims) >= self.obs_dim:
            raise ValueError(f"goal dims must be indices in [0, {self.obs_dim}), got {list(self.dims)}")
        if self.slot is not None:
            start, stop = self.slot
            if not 0 <= start < stop <= self.obs_dim or stop - start != len(self.dims):
                raise ValueError(f"goal slot {self.slot} must be a range of {len(self.dims)} observation indices")
        if not self.threshold >= 0:
            raise ValueError(f"goal threshold must be >= 0, got {self.threshold}")

    @property
    def goal_dim(self) -> int:
        return len(self.dims)

    @property
    def input_dim(self) -> int:
        """The width of a policy's input: the observation, plus the goal unless it has a slot."""
        return self.obs_dim + (0 if self.slot is not None else self.goal_dim)

    def project(self, obs: np.ndarray) -> np.ndarray:
        """The goal a state achieves: ``obs[..., dims]``."""
        return np.asarray(obs)[..., list(self.dims)]

    def compose(self, obs: Any, goal: Any, xp: Any = np) -> Any:
        """A policy's input from observations ``(..., obs_dim)`` and goals ``(..., goal_dim)``; ``xp`` is
        ``numpy`` or ``jax.numpy``."""
        if self.slot is None:
            return xp.concatenate([obs, goal], axis=-1)
        start, stop = self.slot
        return xp.concatenate([obs[..., :start], goal, obs[..., stop:]], axis=-1)

    def reached(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Whether each state reaches its goal (``threshold`` > 0; with 0, exact equality)."""
        distance = np.linalg.norm(self.project(obs).astype(np.float64) - np.asarray(goal, np.float64), axis=-1)
        return distance <= self.threshold

    def to_json(self) -> dict:
        return {"obs_dim": self.obs_dim, "dims": list(self.dims), "slot": None if self.slot is None else list(self.slot),
                "threshold": self.threshold}

    @classmethod
    def from_json(cls, data: dict) -> GoalSpace:
        return cls(int(data["obs_dim"]), tuple(int(d) for d in data["dims"]),
                   None if data.get("slot") is None else (int(data["slot"][0]), int(data["slot"][1])),
                   float(data.get("threshold", 0.0)))


def key_ranges(obs_keys: Sequence[str], sizes: Sequence[int]) -> dict[str, tuple[int, int]]:
    """``(start, stop)`` of each dict-observation key in the flattened observation (keys in the given order)."""
    ranges, start = {}, 0
    for key, size in zip(obs_keys, sizes, strict=True):
        ranges[key] = (start, start + int(size))
        start += int(size)
    return ranges


def resolve_goal_space(obs_dim: int, dims: Sequence[int] | None, threshold: float,
                       key_sizes: dict[str, int] | None = None) -> GoalSpace:
    """The goal space of data with ``obs_dim``-wide flattened observations.

    ``key_sizes`` (dict observations: each key's flattened size, in flattening order) with both
    ``achieved_goal`` and ``desired_goal`` gives the dict layout (``dims`` must then be None or the
    achieved goal's indices). Otherwise the goal is ``dims`` of the state (None: all of it), appended.
    """
    if key_sizes and ACHIEVED in key_sizes and DESIRED in key_sizes:
        ranges = key_ranges(list(key_sizes), list(key_sizes.values()))
        achieved = tuple(range(*ranges[ACHIEVED]))
        if dims is not None and tuple(dims) != achieved:
            raise ValueError(f"goal_dims {list(dims)} differ from the achieved_goal entry's indices {list(achieved)}; "
                             "with achieved_goal/desired_goal observations the goal is the achieved goal")
        return GoalSpace(obs_dim, achieved, ranges[DESIRED], threshold)
    return GoalSpace(obs_dim, tuple(range(obs_dim)) if dims is None else tuple(int(d) for d in dims), None, threshold)
