"""``armfarm eval``: roll out a trained policy and report its return."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import print_json, progress_bar, results, user_errors


def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory, checkpoint directory or policy.npz; `random` "
                                             "evaluates a uniform-random policy (the baseline for any action space)."),
    env_id: str = typer.Option(..., "--env", help="Gymnasium environment id."),
    episodes: int = typer.Option(10, "--episodes", min=1, help="Evaluation episodes."),
    seed: int = typer.Option(10_000, "--seed", min=0, help="Episode i is reset with seed + i."),
    shield: Path = typer.Option(None, "--shield", help="Run the policy behind this shield (`armfarm shield fit`)."),
    cost_budget: float = typer.Option(None, "--cost-budget", min=0.0,
                                      help="Episode cost budget for the normalised cost (default: the task's)."),
    tasks: str = typer.Option(None, "--tasks", help="Goal-conditioned policies: the environment's evaluation "
                                                     "tasks to run, e.g. 1-5 (OGBench's); reports success rates."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Mean and std return and cost of the policy in RUN_DIR, with the D4RL-normalised score and the
    normalised cost (cost / budget) where defined; with --tasks, the success rate of a goal-conditioned
    policy on each evaluation task and overall. `armfarm eval random --env ENV` scores uniform-random
    actions, seeded per episode."""
    from armfarm.envs.behavior import load_policy_or_random
    from armfarm.evaluate.rollouts import evaluate_policy

    if tasks is not None:
        _evaluate_tasks(run_dir, env_id, tasks, episodes, seed, as_json)
        return
    with user_errors(), progress_bar() as bar:
        policy = load_policy_or_random(run_dir, env_id)
        if shield is not None:
            from armfarm.shield import Shield

            policy = Shield.load(shield).wrap(policy)
        task = bar.add_task("evaluating", total=episodes, info=env_id)
        result = evaluate_policy(policy, env_id, episodes=episodes, seed=seed, progress=lambda: bar.advance(task),
                                 cost_budget=cost_budget)
    if as_json:
        print_json(result.to_json())
        return
    normalized = "" if result.normalized is None else f", normalized {result.normalized:.1f}"
    cost = f"; cost {result.cost_mean:.2f} ± {result.cost_std:.2f}"
    if result.normalized_cost is not None:
        cost += f", normalized cost {result.normalized_cost:.2f} (budget {result.cost_budget:g})"
    if shield is not None:
        cost += f"; shield interventions {result.interventions_mean:.1f} per episode"
    results.print(f"{env_id}: return {result.return_mean:.2f} ± {result.return_std:.2f} over {episodes} episodes"
                  f"{normalized}{cost}")


def _evaluate_tasks(run_dir: Path, env_id: str, tasks: str, episodes: int, seed: int, as_json: bool) -> None:
    """``armfarm eval --tasks``: success rates of a goal-conditioned policy on the environment's tasks."""
    from armfarm.envs.behavior import resolve_policy_path
    from armfarm.envs.registry import make_env
    from armfarm.goals.tasks import evaluate_goal_tasks, ogbench_env_id, parse_tasks
    from armfarm.policy import NumpyPolicy

    with user_errors(), progress_bar() as bar:
        policy = NumpyPolicy.load(resolve_policy_path(run_dir))
        env = make_env(ogbench_env_id(env_id))
        available = len(getattr(env.unwrapped, "task_infos", None) or [])
        env.close()
        if not available:
            raise ValueError(f"{env_id} has no evaluation tasks (OGBench's environments have five)")
        chosen = parse_tasks(tasks, available)
        task = bar.add_task("evaluating", total=episodes * len(chosen), info=env_id)
        result = evaluate_goal_tasks(policy, env_id, chosen, episodes=episodes, seed=seed,
                                     progress=lambda: bar.advance(task))
    if as_json:
        print_json(result)
        return
    for row in result["tasks"]:
        results.print(f"task {row['task']} ({row['name']}): success {row['success_rate']:.0%} "
                      f"({row['successes']}/{row['episodes']})")
    results.print(f"{env_id}: success {result['success_rate']:.0%} over {len(result['tasks'])} tasks")
