"""Goal-reaching evaluation: a goal-conditioned policy on an environment's evaluation tasks.

OGBench's environments (``pointmaze-medium-v0``, ``cube-single-v0``, ...) ship five evaluation tasks
each: ``reset(options={"task_id": i})`` places the agent and returns the goal observation as
``info["goal"]``, and ``info["success"]`` says when it is reached. Dataset names are accepted for their
environment (``pointmaze-medium-navigate-v0`` is ``pointmaze-medium-v0``), as OGBench does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from armfarm.goals.space import GoalSpace

OGBENCH_DATASET_TYPES = ("navigate", "stitch", "explore", "play", "noisy")


class GoalPolicy:
    """An exported goal-conditioned policy (its metadata holds the goal space) as ``act(obs, goal)``."""

    def __init__(self, policy: Any):
        meta = getattr(policy, "metadata", {}) or {}
        if "goal" not in meta:
            raise ValueError(f"the policy ({meta.get('algo', 'unknown algorithm')}) is not goal-conditioned; "
                             "train it with gcbc, gciql or gcivl")
        self.policy, self.space = policy, GoalSpace.from_json(meta["goal"])

    def __call__(self, obs: Any, goal: Any) -> np.ndarray:
        """The action towards ``goal``, a goal observation."""
        return self.towards(obs, self.space.project(np.asarray(goal, np.float32).reshape(-1)))

    def towards(self, obs: Any, target: Any) -> np.ndarray:
        """The action towards ``target``, a point in goal space (a goal observation's goal entries)."""
        return self.policy(self.space.compose(np.asarray(obs, np.float32).reshape(-1),
                                              np.asarray(target, np.float32).reshape(-1)))


def parse_tasks(text: str, available: int) -> list[int]:
    """``"1-5"``, ``"2"`` or ``"1,3,5"`` as task ids in ``1..available`` (ValueError naming the bad part)."""
    ids: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            low, _, high = part.partition("-")
            ids.extend(range(int(low), int(high or low) + 1))
        except ValueError:
            raise ValueError(f"--tasks: {part!r} is not a task id or a range like 1-5") from None
    bad = [i for i in ids if not 1 <= i <= available]
    if bad or not ids:
        raise ValueError(f"--tasks: {bad or text!r} outside the environment's tasks 1-{available}")
    return list(dict.fromkeys(ids))


def ogbench_env_id(env_id: str) -> str:
    """The environment of an OGBench dataset name (``pointmaze-medium-navigate-v0`` -> ``pointmaze-medium-v0``)."""
    parts = env_id.split("-")
    if len(parts) >= 3 and parts[-2] in OGBENCH_DATASET_TYPES:
        return "-".join(parts[:-2] + parts[-1:])
    return env_id


def evaluate_goal_tasks(policy: Any, env_id: str, tasks: Sequence[int] | None = None, episodes: int = 10,
                        seed: int = 0, progress: Callable[[], None] | None = None) -> dict:
    """Success rate of ``policy`` (exported, goal-conditioned) on each of the environment's ``tasks``
    (1-based; None: all), ``episodes`` per task, episode ``e`` of a task reset with ``seed + e``.

    Returns ``{"env_id", "tasks": [{"task", "name", "success_rate", "successes", "episodes"}],
    "success_rate"}`` (the mean over tasks)."""
    from armfarm.envs.registry import global_numpy_seed, make_env

    act = GoalPolicy(policy)
    env = make_env(ogbench_env_id(env_id))
    try:
        infos = getattr(env.unwrapped, "task_infos", None)
        if not infos:
            raise ValueError(f"{env_id} has no evaluation tasks (OGBench's environments have five)")
        chosen = list(range(1, len(infos) + 1)) if tasks is None else list(tasks)
        rows = []
        for task in chosen:
            successes = 0
            for e in range(episodes):
                with global_numpy_seed(seed + e):  # OGBench's start noise comes from np.random
                    obs, info = env.reset(seed=seed + e, options={"task_id": task, "render_goal": False})
                    goal, reached = info["goal"], False
                    while True:
                        obs, _r, terminated, truncated, info = env.step(act(obs, goal))
                        reached = reached or bool(info.get("success", False))
                        if terminated or truncated:
                            break
                successes += reached
                if progress is not None:
                    progress()
            rows.append({"task": task, "name": infos[task - 1].get("task_name", f"task{task}"),
                         "success_rate": successes / episodes, "successes": successes, "episodes": episodes})
    finally:
        env.close()
    return {"env_id": env_id, "tasks": rows, "success_rate": float(np.mean([r["success_rate"] for r in rows]))}
