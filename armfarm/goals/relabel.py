"""Hindsight relabeling: goals drawn from the data itself (Kaelbling 1993; Andrychowicz et al. 2017's
HER), in the form OGBench (Park et al. 2024) and HIQL (Park et al. 2023) train with.

For each sampled transition ``i`` (a state of episode ``e``) a goal *index* ``j`` is drawn:

* the current state, ``j = i``, with probability ``p_cur``;
* a future state of the same episode with ``p_traj``: ``j = min(i + k, last(e))`` with
  ``k ~ Geometric(1 - gamma)`` (``geom_sample``; the discounted state-occupancy of the data's
  behaviour), or ``j`` uniform on ``[min(i + 1, last(e)), last(e)]``;
* any state of the data, uniformly, with ``p_rand``.

``last(e)`` is the episode's last transition, so a future goal never comes from another episode. The
goal is ``project(obs[j])`` (:class:`armfarm.goals.space.GoalSpace`), and the transition is relabeled
with ``success = (j == i) or ||project(obs[i]) - g|| <= threshold``:

    reward = success - 1 (``gc_negative``, OGBench's default: 0 at the goal, -1 elsewhere), or success,
    terminal = success                                                 (the episode ends at its goal)

Hierarchical learners (HIQL; ``config.subgoal_steps = k > 0``) also get ``subgoals``, the state ``k``
steps ahead, ``min(i + k, last(e))`` (the low level's goal), and ``subgoal_targets``, the state ``k``
steps ahead but not past the actor goal when that goal is later in the same episode (else ``k`` steps
ahead), which the high level learns to propose (HIQL, Park et al. 2023, Sec. 4), with that state's
whole observation as ``subgoal_target_observations``.

Two goals are drawn per transition: ``value_goals`` (with the ``value_*`` rates; rewards and terminals
follow them) and ``actor_goals`` (the ``actor_*`` rates), as OGBench's agents use. All of it is
vectorised NumPy over the whole ``(K, B)`` draw of a fused call: no Python per sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from armfarm.algos.core.batches import episode_bounds
from armfarm.goals.space import GoalSpace

GOAL_BATCH_KEYS = ("value_goals", "actor_goals")
SUBGOAL_BATCH_KEYS = ("subgoals", "subgoal_targets", "subgoal_target_observations")


def check_rates(config: Any) -> None:
    """Each goal distribution's three rates are >= 0 and sum to 1 (ValueError naming them)."""
    for role in ("value", "actor"):
        rates = [getattr(config, f"{role}_p_{kind}goal") for kind in ("cur", "traj", "random")]
        if min(rates) < 0 or not np.isclose(sum(rates), 1.0):
            raise ValueError(f"{role}_p_curgoal + {role}_p_trajgoal + {role}_p_randomgoal must be >= 0 and sum to 1, "
                             f"got {rates}")


class GoalSampler:
    """Batches of a :class:`~armfarm.data.TransitionDataset` with relabeled goals.

    ``sample_stacked(rng, K, B)`` returns the base batch keys (``rewards`` and ``terminals`` relabeled)
    plus ``value_goals`` and ``actor_goals`` ``(K, B, goal_dim)``, deterministic given ``rng``.
    ``config`` supplies the rates (``value_p_curgoal``, ``value_p_trajgoal``, ``value_p_randomgoal``,
    ``value_geom_sample`` and the ``actor_`` ones), ``gamma`` and ``gc_negative``.
    """

    def __init__(self, data: Any, space: GoalSpace, config: Any):
        check_rates(config)
        obs = getattr(data, "observations", None)
        if not isinstance(obs, np.ndarray) or obs.ndim != 2:
            raise ValueError("goal relabeling needs flattened (N, obs_dim) observations in memory (a TransitionDataset)")
        if obs.shape[1] != space.obs_dim:
            raise ValueError(f"the goal space is for {space.obs_dim}-wide observations, the data's are {obs.shape[1]}")
        self.data, self.space, self.config = data, space, config
        starts, ends = episode_bounds(data)
        self.last = np.repeat(ends - 1, ends - starts)  # each transition's episode's last transition
        self.goals = np.ascontiguousarray(space.project(data.observations), np.float32)

    @property
    def size(self) -> int:
        return self.data.size

    def __getattr__(self, name: str) -> Any:  # the dataset's other attributes (episode_starts, obs_keys, ...)
        if name == "data":
            raise AttributeError(name)
        return getattr(self.data, name)

    def goal_indices(self, rng: np.random.Generator, idx: np.ndarray, role: str) -> np.ndarray:
        """Goal indices for transitions ``idx`` with the ``role`` ("value" or "actor") rates."""
        c = self.config
        p_cur, p_traj = getattr(c, f"{role}_p_curgoal"), getattr(c, f"{role}_p_trajgoal")
        n, last = len(idx), self.last[idx]
        if getattr(c, f"{role}_geom_sample"):
            future = np.minimum(idx + rng.geometric(1.0 - c.gamma, size=n), last)
        else:
            first = np.minimum(idx + 1, last)
            future = first + np.floor(rng.random(n) * (last - first + 1)).astype(np.int64)
        uniform = rng.integers(0, self.size, size=n)
        u = rng.random(n)
        return np.where(u < p_cur, idx, np.where(u < p_cur + p_traj, future, uniform))

    def sample_stacked(self, rng: np.random.Generator, num_batches: int, batch_size: int) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, size=num_batches * batch_size)
        value_idx = self.goal_indices(rng, idx, "value")
        actor_idx = self.goal_indices(rng, idx, "actor")
        d = self.data
        batch = {"observations": d.observations[idx], "actions": np.asarray(d.actions[idx], np.float32),
                 "next_observations": d.next_observations[idx]}
        batch["value_goals"] = self.goals[value_idx]
        batch["actor_goals"] = self.goals[actor_idx]
        success = value_idx == idx
        if self.space.threshold > 0:
            success |= self.space.reached(batch["observations"], batch["value_goals"])
        success = success.astype(np.float32)
        batch["rewards"] = success - 1.0 if self.config.gc_negative else success
        batch["terminals"] = success
        k = getattr(self.config, "subgoal_steps", 0)
        if k > 0:
            ahead = np.minimum(idx + k, self.last[idx])
            later_here = (actor_idx >= idx) & (actor_idx <= self.last[idx])
            target = np.where(later_here, np.minimum(ahead, actor_idx), ahead)
            batch["subgoals"] = self.goals[ahead]
            batch["subgoal_targets"] = self.goals[target]
            batch["subgoal_target_observations"] = d.observations[target]
        return {k: v.reshape(num_batches, batch_size, *v.shape[1:]) for k, v in batch.items()}

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.sample_stacked(rng, 1, batch_size).items()}
