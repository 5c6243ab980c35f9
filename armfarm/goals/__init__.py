"""Goal-conditioned learning: goal spaces (:mod:`~armfarm.goals.space`), hindsight relabeling
(:mod:`~armfarm.goals.relabel`) and goal-reaching evaluation on an environment's tasks
(:mod:`~armfarm.goals.tasks`). The algorithms are ``gcbc``, ``gciql`` and ``gcivl`` in :mod:`armfarm.algos`."""

from armfarm.goals.relabel import GOAL_BATCH_KEYS, GoalSampler
from armfarm.goals.space import GoalSpace, resolve_goal_space
from armfarm.goals.tasks import GoalPolicy, evaluate_goal_tasks, parse_tasks

__all__ = ["GOAL_BATCH_KEYS", "GoalPolicy", "GoalSampler", "GoalSpace", "evaluate_goal_tasks", "parse_tasks",
           "resolve_goal_space"]
