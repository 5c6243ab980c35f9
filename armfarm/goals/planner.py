"""Waypoints for goals farther than a policy reliably reaches: shortest paths over a graph of stored
states, with edges weighted by the learned goal-conditioned value.

This is search on the replay buffer (Eysenbach et al. 2019, SoRB) and LM-Nav's topological graph
(Shah et al. 2022) on a value that is already there: a goal-conditioned value ``V(s, g)`` trained on
reward -1 per step (``gc_negative``) is ``-(1 - gamma^d) / (1 - gamma)`` for a goal ``d`` steps away,
so ``d(s, g) = log(1 + (1 - gamma) V(s, g)) / log(gamma)`` (:func:`armfarm.algos.core.goals.steps_to_goal`).

- **Nodes**: ``num_nodes`` stored states, chosen by farthest-point sampling in goal space from a random
  pool of the store's observations, so they cover where the data went.
- **Edges**: ``i -> j`` with weight ``d(s_i, g_j)`` where that is at most ``max_edge`` steps (SoRB's
  MaxDist: longer estimates are the unreliable ones); all-pairs shortest paths by Floyd-Warshall. By
  default ``max_edge`` is the distance at which the discount has fallen to 0.9, ``log 0.9 / log gamma``
  (10.5 steps at gamma 0.99): a learned value still resolves distances there, while it saturates far
  beyond (BENCHMARKS.md has the sweep that chose it).
- **Acting**: from state ``s`` towards goal ``g``, go straight when ``d(s, g) <= max_edge``; otherwise
  take the path minimising ``d(s, n_i) + D(i, j) + d(n_j, g)`` over nodes within ``max_edge`` of ``s``
  and of ``g`` and head for its first node that is at least ``reach`` steps away (a node already
  reached is passed). Unreachable goals (no path) are pursued directly.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from armfarm.goals.space import GoalSpace


class GoalDistance:
    """``distance(obs (N, D), goals (M, G)) -> (N, M)`` steps, from a trained run's goal-conditioned value."""

    def __init__(self, checkpoint: Any, chunk: int = 65536):
        import jax

        from armfarm.algos.core.contract import get_algorithm
        from armfarm.algos.core.goals import composer, goal_space, steps_to_goal

        algo = get_algorithm(checkpoint.algo_name)
        if algo.goal_value is None:
            raise ValueError(f"{algo.name} learns no goal-conditioned value, so it cannot plan waypoints; "
                             "train gciql, gcivl or hiql, or run without --plan")
        config, state = checkpoint.config, checkpoint.state
        compose = composer(config, state)
        self.space: GoalSpace = goal_space(config, int(state["norm"]["obs_mean"].shape[0]))
        self.gamma = float(config.gamma)
        self.chunk = chunk

        @jax.jit
        def pairs(obs, goals):
            return steps_to_goal(config, algo.goal_value(config, state, compose(obs, goals)))

        self._pairs = pairs

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike) -> GoalDistance:
        from armfarm.algos.core.checkpoints import load_checkpoint
        from armfarm.runs import RunDir

        path = RunDir(run_dir).latest_checkpoint()
        if path is None:
            raise FileNotFoundError(f"{run_dir} holds no checkpoint; waypoint planning needs the run's value network")
        return cls(load_checkpoint(path))

    def __call__(self, obs: np.ndarray, goals: np.ndarray) -> np.ndarray:
        obs, goals = np.asarray(obs, np.float32), np.asarray(goals, np.float32)
        n, m = len(obs), len(goals)
        flat_obs = np.repeat(obs, m, axis=0)
        flat_goals = np.tile(goals, (n, 1))
        out = np.empty(n * m, np.float32)
        for start in range(0, n * m, self.chunk):
            stop = min(start + self.chunk, n * m)
            size = stop - start
            pad = self.chunk - size if n * m > self.chunk else 0  # one compiled shape for every chunk
            o = np.pad(flat_obs[start:stop], ((0, pad), (0, 0)))
            g = np.pad(flat_goals[start:stop], ((0, pad), (0, 0)))
            out[start:stop] = np.asarray(self._pairs(o, g))[:size]
        return out.reshape(n, m)


def farthest_points(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` rows of ``points`` chosen greedily, each the farthest from those before it."""
    k = min(k, len(points))
    chosen = [int(rng.integers(len(points)))]
    nearest = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(k - 1):
        i = int(np.argmax(nearest))
        chosen.append(i)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[i], axis=1))
    return np.array(chosen)


class WaypointPlanner:
    """Shortest paths over stored states (see the module docstring); :meth:`waypoint` is the goal to
    give the policy now."""

    def __init__(self, distance: GoalDistance, observations: np.ndarray, num_nodes: int = 300,
                 max_edge: float | None = None, reach: float | None = None, pool: int = 20000, seed: int = 0):
        if max_edge is None:
            max_edge = float(np.log(0.9) / np.log(distance.gamma))
        if reach is None:
            reach = max_edge / 4
        if not 0 < reach < max_edge:
            raise ValueError(f"need 0 < reach < max_edge, got reach={reach}, max_edge={max_edge}")
        rng = np.random.default_rng(seed)
        observations = np.asarray(observations, np.float32)
        candidates = observations[rng.choice(len(observations), min(pool, len(observations)), replace=False)]
        space = distance.space
        picked = farthest_points(space.project(candidates), num_nodes, rng)
        self.distance, self.max_edge, self.reach = distance, float(max_edge), float(reach)
        self.nodes = candidates[picked]
        self.node_goals = space.project(self.nodes).astype(np.float32)
        edges = distance(self.nodes, self.node_goals)
        edges[edges > self.max_edge] = np.inf
        np.fill_diagonal(edges, 0.0)
        self.num_edges = int(np.isfinite(edges).sum()) - len(edges)
        self.dist, self.next_hop = _all_pairs_shortest(edges)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, store: str | os.PathLike | None = None, **kwargs: Any) -> WaypointPlanner:
        """A planner over the states of ``store`` (default: the store the run trained on) with the run's value."""
        from armfarm.data import TransitionDataset
        from armfarm.runs import RunDir

        store = store if store is not None else RunDir(run_dir).read_config().get("store")
        if store is None:
            raise ValueError(f"{run_dir}'s config names no store; give the store to plan over")
        return cls(GoalDistance.from_run(run_dir), TransitionDataset.from_store(store).observations, **kwargs)

    def path(self, obs: np.ndarray, goal: np.ndarray) -> list[int]:
        """Node indices from ``obs`` to ``goal`` (empty: go straight, or no path)."""
        return self._route(obs, goal)[0]

    def _route(self, obs: np.ndarray, goal: np.ndarray) -> tuple[list[int], np.ndarray | None]:
        """:meth:`path` and the distances from ``obs`` to every node (None when going straight), each
        beyond ``max_edge`` as inf."""
        goal = np.asarray(goal, np.float32).reshape(1, -1)
        obs = np.asarray(obs, np.float32).reshape(1, -1)
        if self.distance(obs, goal)[0, 0] <= self.max_edge:
            return [], None
        from_start = self.distance(obs, self.node_goals)[0]
        to_goal = self.distance(self.nodes, goal)[:, 0]
        from_start[from_start > self.max_edge] = np.inf
        to_goal[to_goal > self.max_edge] = np.inf
        total = from_start[:, None] + self.dist + to_goal[None, :]
        i, j = np.unravel_index(int(np.argmin(total)), total.shape)
        if not np.isfinite(total[i, j]):
            return [], from_start
        route = [int(i)]
        while route[-1] != j:
            route.append(int(self.next_hop[route[-1], j]))
        return route, from_start

    def waypoint(self, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The goal to pursue from ``obs``: ``goal`` itself, or the first node of the path that is at
        least ``reach`` steps away."""
        route, from_start = self._route(obs, goal)
        far = [node for node in route if from_start[node] >= self.reach]
        return self.node_goals[far[0]] if far else np.asarray(goal, np.float32).reshape(-1)


def _all_pairs_shortest(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Floyd-Warshall: shortest distances and, for each pair, the first node after ``i`` on the path."""
    dist = edges.astype(np.float64).copy()
    n = len(dist)
    next_hop = np.where(np.isfinite(dist), np.arange(n)[None, :], -1)
    for k in range(n):
        through = dist[:, k:k + 1] + dist[k:k + 1, :]
        better = through < dist
        dist = np.where(better, through, dist)
        next_hop = np.where(better, next_hop[:, k:k + 1], next_hop)
    return dist, next_hop
