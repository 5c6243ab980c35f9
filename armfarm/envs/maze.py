"""D4RL's maze2d behaviour controller for Gymnasium-Robotics PointMaze.

Fu et al. 2020 (D4RL, Sec. 5 "Maze2D") collect maze data with a planner and a PD controller:
Q-iteration on the maze grid gives the next waypoint towards the goal, and the action is

    a = clip(Kp * (waypoint - pos) - Kd * vel, -1, 1),   Kp = 10, Kd = 1,

optionally with N(0, sigma^2) noise added before clipping (``--noisy``, sigma = 0.5).
"""

from __future__ import annotations

import numpy as np


def grid_distances(free: np.ndarray, goal_cell: tuple[int, int]) -> np.ndarray:
    """Shortest number of moves from every cell to ``goal_cell`` by value (Q-)iteration.

    ``free`` is a boolean (rows, cols) grid. Moves are up/down/left/right with unit cost;
    walls and unreachable cells get ``inf``. On a deterministic grid with unit costs, Q-iteration
    converges to exactly these distances.
    """
    dist = np.full(free.shape, np.inf)
    dist[goal_cell] = 0.0
    for _ in range(free.size):
        padded = np.pad(dist, 1, constant_values=np.inf)
        neighbours = np.minimum.reduce(
            [padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]
        )
        updated = np.where(free, np.minimum(dist, neighbours + 1.0), np.inf)
        if np.array_equal(updated, dist):
            break
        dist = updated
    return dist


class WaypointController:
    """Drive a PointMaze agent to its goal through grid waypoints (D4RL maze2d recipe).

    Works on the observation dict of ``PointMaze_*`` environments: ``observation = [x, y, vx, vy]``
    and ``desired_goal = [gx, gy]``. ``target_key`` may name another key (or use :meth:`act_towards`)
    to steer to a different point, e.g. a decoy goal for a deliberately poor behaviour policy.
    """

    def __init__(self, maze, kp: float = 10.0, kd: float = 1.0):
        self.maze = maze
        self.kp, self.kd = kp, kd
        self.free = np.array([[cell != 1 for cell in row] for row in maze.maze_map], dtype=bool)
        self._dist_cache: dict[tuple[int, int], np.ndarray] = {}

    def _cell(self, xy: np.ndarray) -> tuple[int, int]:
        row, col = self.maze.cell_xy_to_rowcol(np.asarray(xy, dtype=np.float64))
        return int(row), int(col)

    def waypoint(self, pos: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The next point to drive to: the centre of the neighbour cell nearest the target's cell."""
        here, goal = self._cell(pos), self._cell(target)
        if here == goal or not self.free[here]:
            return np.asarray(target, dtype=np.float64)
        if goal not in self._dist_cache:
            self._dist_cache[goal] = grid_distances(self.free, goal)
        dist = self._dist_cache[goal]
        row, col = here
        moves = [(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)]
        best = min(moves, key=lambda rc: dist[rc])
        if not np.isfinite(dist[best]):
            return np.asarray(target, dtype=np.float64)
        return self.maze.cell_rowcol_to_xy(np.array(best))

    def act_towards(self, observation: np.ndarray, target: np.ndarray) -> np.ndarray:
        """PD action towards the next waypoint on the way to ``target`` (no noise)."""
        pos, vel = observation[:2], observation[2:4]
        action = self.kp * (self.waypoint(pos, target) - pos) - self.kd * vel
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def __call__(self, obs: dict) -> np.ndarray:
        return self.act_towards(obs["observation"], obs["desired_goal"])


def maze_cells(maze_map: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The free cells of an OGBench maze map (1 = wall) and, among them, the "vertex" cells: those that
    are not the middle of a straight corridor (OGBench's navigate goals)."""
    free, vertices = [], []
    rows, cols = maze_map.shape
    for i in range(rows):
        for j in range(cols):
            if maze_map[i, j] != 0:
                continue
            free.append((i, j))
            vertical = maze_map[i - 1, j] == 0 and maze_map[i + 1, j] == 0 and maze_map[i, j - 1] and maze_map[i, j + 1]
            horizontal = maze_map[i, j - 1] == 0 and maze_map[i, j + 1] == 0 and maze_map[i - 1, j] and maze_map[i + 1, j]
            if not (vertical or horizontal):
                vertices.append((i, j))
    return free, vertices


def cells_at_distance(maze_map: np.ndarray, start: tuple[int, int], steps: int) -> list[tuple[int, int]]:
    """Free cells exactly ``steps`` grid moves from ``start`` (OGBench's stitch goals are 4 away)."""
    dist = grid_distances(maze_map == 0, start)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(dist == steps), strict=True)]


class OGBenchMazeOracle:
    """OGBench's navigate behaviour for its point mazes: head for the environment's oracle subgoal (the
    next cell centre on the shortest path to the current goal) at full speed, ``a = d / ||d||``, plus
    N(0, noise^2) action noise, clipped to [-1, 1] (Park et al. 2024, App. D; their point agent uses
    the unit direction as its action)."""

    def __init__(self, env, noise: float, rng: np.random.Generator):
        self.env, self.noise, self.rng = env.unwrapped, noise, rng

    def __call__(self, _obs=None) -> np.ndarray:
        here = self.env.get_xy()
        subgoal, _ = self.env.get_oracle_subgoal(here, self.env.cur_goal_xy)
        direction = subgoal - here
        direction = direction / (np.linalg.norm(direction) + 1e-6)
        return np.clip(direction + self.rng.normal(0.0, self.noise, 2), -1.0, 1.0).astype(np.float32)
