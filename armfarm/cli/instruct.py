"""``armfarm instruct``: follow a spoken-style instruction with a goal-conditioned policy."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import console, print_json, progress_bar, results, user_errors
from armfarm.language.ground import DEFAULT_THRESHOLD


def instruct(
    run_dir: Path = typer.Argument(None, help="Run directory (or policy.npz) of a goal-conditioned policy."),
    instruction: str = typer.Argument(None, help='What to do, e.g. "go to the top-left corner, then the centre".'),
    env_id: str = typer.Option(..., "--env", help="OGBench maze environment, e.g. pointmaze-medium-v0."),
    list_landmarks: bool = typer.Option(False, "--landmarks", help="List the landmarks an instruction may name."),
    landmark_file: Path = typer.Option(None, "--landmark-file", help="User landmarks (JSON) to add to the maze's own."),
    add_landmark: str = typer.Option(None, "--add-landmark", help="Add a landmark of this name to --landmark-file, "
                                                                  "from --store, --episode and --step; then exit."),
    store: Path = typer.Option(None, "--store", help="Store for --add-landmark, or the states to plan over "
                                                     "(default: the run's own store)."),
    episode: str = typer.Option(None, "--episode", help="Episode id for --add-landmark."),
    step: int = typer.Option(-1, "--step", help="Observation index in --episode for --add-landmark (-1: its last)."),
    plan: bool = typer.Option(False, "--plan/--no-plan", help="Plan through waypoints over stored states with the "
                                                            "run's learned value (gciql, gcivl)."),
    start: str = typer.Option(None, "--start", help="Maze landmark to start at (default: task 1's start)."),
    steps_per_landmark: int = typer.Option(None, "--steps-per-landmark", min=1,
                                           help="Steps allowed to reach each landmark (default: the env's episode length)."),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=0.0, max=1.0,
                                    help="Least similarity at which a phrase names a landmark."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the start and goal noise."),
    plot: Path = typer.Option(None, "--plot", help="Draw the maze, the landmarks and the route taken to this PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Parse INSTRUCTION into landmarks, ground each by sentence similarity, and run the policy in RUN_DIR
    through them in order; reports which were reached. Needs the 'language' extra."""
    from armfarm.goals.landmarks import landmark_from_store, load_landmark_file, save_landmark_file
    from armfarm.language.instruct import available_landmarks, follow_instruction, plan_instruction

    with user_errors():
        user = load_landmark_file(landmark_file) if landmark_file is not None else []
        if add_landmark is not None:
            if landmark_file is None or store is None or episode is None:
                raise ValueError("--add-landmark needs --landmark-file, --store and --episode")
            available_landmarks(env_id, user)  # the env exists and the current file is consistent
            landmark = landmark_from_store(store, add_landmark, episode, step)
            available_landmarks(env_id, [*user, landmark])  # refuses a name the maze or the file has
            save_landmark_file(landmark_file, [*user, landmark])
            results.print(f"added landmark {add_landmark!r} ({len(landmark.goal)}-dim goal) to {landmark_file}")
            return
        landmarks = available_landmarks(env_id, user)
        if list_landmarks:
            if as_json:
                print_json({"env_id": env_id, "landmarks": [lm.to_json() for lm in landmarks]})
            else:
                for lm in landmarks:
                    where = f"cell {lm.cell}" if lm.cell is not None else "stored observation"
                    results.print(f"{lm.name}  ({lm.source}, {where})")
            return
        if run_dir is None or instruction is None:
            raise ValueError("give RUN_DIR and INSTRUCTION (or --landmarks to list the places)")
        from armfarm.envs.behavior import resolve_policy_path
        from armfarm.policy import NumpyPolicy

        policy = NumpyPolicy.load(resolve_policy_path(run_dir))
        groundings = plan_instruction(instruction, landmarks, threshold=threshold)
        if not as_json:
            console.print("landmarks: " + " -> ".join(f"{g.name} ({g.score:.2f})" for g in groundings), highlight=False)
        planner = None
        if plan:
            from armfarm.goals.planner import WaypointPlanner

            with console.status("building the waypoint graph"):
                planner = WaypointPlanner.from_run(run_dir if run_dir.is_dir() else run_dir.parent, store)
        with progress_bar() as bar:
            task = bar.add_task("following", total=len(groundings), info=env_id)
            report = follow_instruction(policy, env_id, instruction, landmarks=landmarks, planner=planner, start=start,
                                        steps_per_landmark=steps_per_landmark, seed=seed, groundings=groundings,
                                        progress=lambda: bar.advance(task))
        if plot is not None:
            from armfarm.envs.registry import make_env
            from armfarm.evaluate.plots import plot_instruction
            from armfarm.goals.tasks import ogbench_env_id

            env = make_env(ogbench_env_id(env_id))
            try:
                plot_instruction(report, env, landmarks, plot)
            finally:
                env.close()
    if as_json:
        print_json({k: report[k] for k in ("landmarks", "success", "instruction", "env_id", "planner")})
        return
    for row in report["landmarks"]:
        mark = "reached" if row["reached"] else "NOT reached"
        results.print(f"{row['phrase']!r} -> {row['name']}: {mark} in {row['steps']} steps")
    results.print("instruction " + ("completed" if report["success"] else "not completed"))
    if plot is not None:
        results.print(f"route drawn to {plot}")
