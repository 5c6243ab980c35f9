"""Landmarks: named places an instruction can send a goal-conditioned policy to.

An environment declares its own (:func:`maze_landmarks` for OGBench's mazes), and users add theirs as
name -> goal observation taken from a stored episode (:func:`landmark_from_store`), kept in a JSON
landmark file (:func:`load_landmark_file`, :func:`save_landmark_file`).

A maze's landmarks are derived from its map, so every maze gets them, not only the ones named here.
Directions read the map as it is printed (row 0 at the top, column 0 at the left):

- the four corners: the free cell nearest each corner of the map ("top-left corner", ...);
- the centre: the free cell nearest the map's centre ("centre of the maze");
- dead ends: free cells with exactly one free neighbour, named by the third of the map they lie in
  ("dead end at the bottom right"; "dead end at the top" for the middle column), with "first",
  "second", ... from left to right where two share a name. A corner that is also a dead end is named
  as the corner.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from armfarm.durable import write_atomic

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


@dataclasses.dataclass(frozen=True)
class Landmark:
    """A named goal: a maze cell (``cell``, an environment's own landmark) or a goal observation
    (``goal``, a user's landmark from the store); exactly one of the two is set."""

    name: str
    cell: tuple[int, int] | None = None
    goal: tuple[float, ...] | None = None
    source: str = "env"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a landmark needs a non-empty name")
        if (self.cell is None) == (self.goal is None):
            raise ValueError(f"landmark {self.name!r}: give a maze cell or a goal observation, not both or neither")
        if self.goal is not None and not np.all(np.isfinite(self.goal)):
            raise ValueError(f"landmark {self.name!r}: its goal observation must be finite")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "source": self.source}
        if self.cell is not None:
            out["cell"] = list(self.cell)
        else:
            out["goal"] = list(self.goal)
        return out


def _free_neighbours(free: np.ndarray, i: int, j: int) -> int:
    return sum(bool(free[i + di, j + dj]) for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))
               if 0 <= i + di < free.shape[0] and 0 <= j + dj < free.shape[1])


def _third(index: int, low: int, high: int) -> int:
    """0, 1 or 2: which third of ``[low, high]`` ``index`` lies in."""
    span = high - low + 1
    return min(2, (index - low) * 3 // span)


def maze_landmarks(maze_map: np.ndarray) -> list[Landmark]:
    """The corners, centre and dead ends of a maze map (0 = free), named as the module says."""
    maze_map = np.asarray(maze_map)
    free = maze_map == 0
    cells = [(int(i), int(j)) for i, j in zip(*np.nonzero(free), strict=True)]
    if not cells:
        raise ValueError("the maze has no free cells")
    rows, cols = maze_map.shape
    landmarks: list[Landmark] = []
    taken: set[tuple[int, int]] = set()
    corners = {"top-left corner": (0, 0), "top-right corner": (0, cols - 1),
               "bottom-left corner": (rows - 1, 0), "bottom-right corner": (rows - 1, cols - 1)}
    for name, (ci, cj) in corners.items():
        cell = min(cells, key=lambda c: (abs(c[0] - ci) + abs(c[1] - cj), c))
        if cell not in taken:
            landmarks.append(Landmark(name, cell=cell))
            taken.add(cell)
    centre = min(cells, key=lambda c: ((c[0] - (rows - 1) / 2) ** 2 + (c[1] - (cols - 1) / 2) ** 2, c))
    if centre not in taken:
        landmarks.append(Landmark("centre of the maze", cell=centre))
        taken.add(centre)
    lo_i, hi_i = min(c[0] for c in cells), max(c[0] for c in cells)
    lo_j, hi_j = min(c[1] for c in cells), max(c[1] for c in cells)
    vertical, horizontal = ("top", "", "bottom"), ("left", "", "right")
    by_name: dict[str, list[tuple[int, int]]] = {}
    for cell in cells:
        if cell in taken or _free_neighbours(free, *cell) != 1:
            continue
        where = " ".join(w for w in (vertical[_third(cell[0], lo_i, hi_i)], horizontal[_third(cell[1], lo_j, hi_j)]) if w)
        by_name.setdefault(f"dead end at the {where or 'centre'}", []).append(cell)
    for name, group in by_name.items():
        group.sort(key=lambda c: (c[1], c[0]))
        for k, cell in enumerate(group):
            label = name if len(group) == 1 else f"{ORDINALS[min(k, len(ORDINALS) - 1)]} {name}"
            landmarks.append(Landmark(label, cell=cell))
    return landmarks


def landmark_from_store(store_path: str | os.PathLike, name: str, episode: str, step: int = -1) -> Landmark:
    """A user's landmark: the (flattened) observation at ``step`` of stored ``episode`` (-1: its last)."""
    from armfarm.data.store import EpisodeStore

    ep = EpisodeStore(store_path).read_episode(episode)  # DataError names a missing episode
    raw = ep.observations
    if isinstance(raw, dict):  # flattened in sorted key order, as the data layer does
        obs = np.concatenate([np.asarray(raw[k], np.float64).reshape(len(raw[k]), -1) for k in sorted(raw)], axis=1)
    else:
        obs = np.asarray(raw, np.float64).reshape(len(raw), -1)
    if not -len(obs) <= step < len(obs):
        raise ValueError(f"episode {episode} has observations 0..{len(obs) - 1}; step {step} is outside")
    return Landmark(name, goal=tuple(float(x) for x in obs[step]), source="user")


def load_landmark_file(path: str | os.PathLike) -> list[Landmark]:
    """The user landmarks in a JSON file ``[{"name", "goal": [...]}, ...]`` (none if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
        if not isinstance(rows, list):
            raise ValueError("expected a JSON list of {name, goal}")
        return [Landmark(str(r["name"]), goal=tuple(float(x) for x in r["goal"]), source="user") for r in rows]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a landmark file ({type(e).__name__}: {e})") from e


def save_landmark_file(path: str | os.PathLike, landmarks: list[Landmark]) -> None:
    """Write user landmarks (atomically), refusing two with the same name."""
    names = [lm.name for lm in landmarks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"landmark names must be unique; repeated: {duplicates}")
    payload = json.dumps([lm.to_json() for lm in landmarks], indent=1).encode()
    write_atomic(Path(path), lambda f: f.write(payload))


def env_landmarks(env: Any) -> list[Landmark]:
    """The landmarks an environment declares (OGBench's mazes: :func:`maze_landmarks`; others: none)."""
    maze_map = getattr(env.unwrapped, "maze_map", None)
    return maze_landmarks(maze_map) if maze_map is not None else []


def check_maze_env(env: Any, env_id: str) -> Any:
    """``env.unwrapped`` if it is one of OGBench's maze environments, which instructions can drive
    (they set goals by position); ValueError otherwise."""
    inner = env.unwrapped
    if not all(hasattr(inner, a) for a in ("maze_map", "set_goal", "ij_to_xy", "xy_to_ij", "compute_success")):
        raise ValueError(f"{env_id} is not one of OGBench's maze environments (pointmaze-*, antmaze-*, ...); "
                         "instructions drive those")
    return inner


def landmark_targets(env: Any, landmarks: list[Landmark]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(goal observation, goal xy)`` for each landmark in a maze environment: a maze cell's goal
    observation is the one the environment itself makes for a goal in that cell (with its goal noise,
    drawn from ``np.random``: seed it for repeatable targets); a user's landmark is
    its stored observation, whose first two entries are the agent's position (OGBench's layout)."""
    inner = env.unwrapped
    out = []
    for lm in landmarks:
        if lm.cell is not None:
            _, info = env.reset(options={"task_info": {"init_ij": lm.cell, "goal_ij": lm.cell}})
            out.append((np.asarray(info["goal"], np.float32), np.asarray(inner.cur_goal_xy, np.float64)))
        else:
            goal = np.asarray(lm.goal, np.float32)
            out.append((goal, goal[:2].astype(np.float64)))
    return out
