"""Follow an instruction: parse it into landmark phrases, ground each to a landmark, and run the
goal-conditioned policy through their goals in order (LM-Nav's pipeline, Shah et al. 2022, with a
sentence encoder for grounding and, optionally, waypoints from :mod:`armfarm.goals.planner`).

The robot starts once (at ``start``, a landmark, or the first evaluation task's start) and keeps going:
each landmark gets ``steps_per_landmark`` steps to reach it, counted as reached when the environment's
own success test holds (OGBench: the agent within its goal tolerance). A landmark not reached within
its steps is reported so and the robot moves on to the next from wherever it stopped; the instruction
succeeds when every landmark was reached in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from armfarm.goals.landmarks import Landmark, check_maze_env, env_landmarks, landmark_targets
from armfarm.goals.tasks import GoalPolicy, ogbench_env_id
from armfarm.language.ground import DEFAULT_THRESHOLD, Grounding, ground
from armfarm.language.parse import InstructionError, landmark_phrases


def available_landmarks(env_id: str, extra: Sequence[Landmark] = ()) -> list[Landmark]:
    """The environment's landmarks and the user's ``extra`` (a name may not be declared twice)."""
    from armfarm.envs.registry import make_env

    env = make_env(ogbench_env_id(env_id))
    try:
        landmarks = env_landmarks(env) + list(extra)
    finally:
        env.close()
    names = [lm.name for lm in landmarks]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"landmark names must be unique; {clash} are declared more than once")
    return landmarks


def plan_instruction(instruction: str, landmarks: Sequence[Landmark], encoder: Any = None,
                     threshold: float = DEFAULT_THRESHOLD) -> list[Grounding]:
    """The landmarks ``instruction`` names, in order (InstructionError for unknown places)."""
    from armfarm.language.encoder import default_encoder

    return ground(landmark_phrases(instruction), [lm.name for lm in landmarks], encoder or default_encoder(),
                  threshold)


def follow_instruction(policy: Any, env_id: str, instruction: str, *, landmarks: Sequence[Landmark] | None = None,
                       encoder: Any = None, planner: Any = None, start: str | None = None,
                       steps_per_landmark: int | None = None, threshold: float = DEFAULT_THRESHOLD,
                       seed: int = 0, groundings: Sequence[Grounding] | None = None,
                       progress: Callable[[], None] | None = None) -> dict:
    """Run ``policy`` (an exported goal-conditioned policy) through the landmarks of ``instruction``.

    ``planner`` (a :class:`~armfarm.goals.planner.WaypointPlanner`) supplies intermediate goals;
    ``groundings`` skips parsing and grounding (a caller that grounded already). Returns
    ``{"instruction", "env_id", "landmarks": [{"phrase", "name", "score", "reached", "steps", "goal_xy"}],
    "success", "planner", "path"}``, where ``path`` is the agent's (x, y) at the start and after every step.
    """
    from armfarm.envs.registry import global_numpy_seed, make_env

    act = GoalPolicy(policy)
    landmarks = list(landmarks) if landmarks is not None else available_landmarks(env_id)
    by_name = {lm.name: lm for lm in landmarks}
    if groundings is None:
        groundings = plan_instruction(instruction, landmarks, encoder, threshold)
    env = make_env(ogbench_env_id(env_id))
    try:
        inner = check_maze_env(env, env_id)
        budget = int(steps_per_landmark or env.spec.max_episode_steps or 1000)
        if start is None:
            start_cell = tuple(inner.task_infos[0]["init_ij"])
        elif start in by_name and by_name[start].cell is not None:
            start_cell = by_name[start].cell
        else:
            raise InstructionError(f"--start {start!r} is not one of the maze's own landmarks: {sorted(by_name)}")
        chosen = [by_name[g.name] for g in groundings]
        with global_numpy_seed(seed):  # OGBench draws start and goal noise from np.random
            targets = landmark_targets(env, chosen)
            obs, _ = env.reset(seed=seed, options={"task_info": {"init_ij": start_cell, "goal_ij": start_cell}})
            rows, path = [], [inner.get_xy().tolist()]
            for g, (goal_obs, goal_xy) in zip(groundings, targets, strict=True):
                inner.set_goal(goal_xy=goal_xy)
                reached, steps = False, 0
                while steps < budget and not reached:
                    target = act.space.project(goal_obs)
                    if planner is not None:
                        target = planner.waypoint(obs, target)
                    obs, _r, _term, _trunc, info = inner.step(act.towards(obs, target))
                    path.append(inner.get_xy().tolist())
                    steps += 1
                    reached = bool(info.get("success", False))
                rows.append({"phrase": g.phrase, "name": g.name, "score": round(g.score, 3), "reached": reached,
                             "steps": steps, "goal_xy": [float(v) for v in goal_xy]})
                if progress is not None:
                    progress()
    finally:
        env.close()
    return {"instruction": instruction, "env_id": env_id, "landmarks": rows,
            "success": all(r["reached"] for r in rows), "planner": planner is not None, "path": path}
