"""``armfarm sweep``: an offline algorithm over a grid of config values x seeds, here or on Ray."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import print_json, progress_bar, results, user_errors
from armfarm.overrides import parse_pairs
from armfarm.train import DEFAULT_STEPS


def sweep(
    algo: str = typer.Argument(..., help="Offline algorithm (`armfarm algos ALGO` lists its settings)."),
    store: Path = typer.Argument(..., help="Episode store to learn from."),
    out: Path = typer.Option(..., "--out", help="Sweep directory (trials/, results.json, results.md, curves.png)."),
    seeds: str = typer.Option("0-2", "--seeds", help="Seeds: a range and/or list, e.g. 0-4 or 0,3,7."),
    grid: list[str] = typer.Option([], "--grid", help="KEY=V1,V2 (repeatable; KEY=V1|V2 for values with commas)."),
    overrides: list[str] = typer.Option([], "--set", help="A setting for every trial, KEY=VALUE (repeatable)."),
    steps: int = typer.Option(DEFAULT_STEPS, "--steps", min=1, help="Gradient steps per trial."),
    env_id: str = typer.Option(None, "--env", help="Evaluate every trial in this env (needed to rank configurations)."),
    eval_episodes: int = typer.Option(10, "--eval-episodes", min=1, help="Episodes per evaluation."),
    eval_every: int = typer.Option(None, "--eval-every", min=1, help="Gradient steps between evaluations (the curves)."),
    ray: str = typer.Option(None, "--ray", help="Run trials as Ray tasks on this cluster: an address (auto, HOST:PORT, "
                                               "ray://HOST:PORT) or 'local' for a Ray instance on this machine."),
    cpus: float = typer.Option(1.0, "--cpus-per-trial", min=0.0, help="With --ray: CPUs each trial holds."),
    gpus: float = typer.Option(0.0, "--gpus-per-trial", min=0.0, help="With --ray: GPUs each trial holds."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Train ALGO on STORE for every combination of --grid values and every seed; finished trials are kept,
    so running the same command again resumes the sweep."""
    from armfarm.sweep import make_trials, parse_grid, parse_seeds, run_sweep, unfinished

    with user_errors():
        seed_list, grid_values = parse_seeds(seeds), parse_grid(grid)
        settings = parse_pairs(overrides)
        todo = unfinished(out, make_trials(algo, grid_values, seed_list, settings))
        with progress_bar() as bar:
            task = bar.add_task(f"sweep {algo}", total=len(todo), info="")

            def finished(trial, _summary) -> None:
                bar.update(task, advance=1, info=f"{trial.config_name} seed {trial.seed}")

            outcome = run_sweep(algo, store, out, seed_list, grid_values, steps, env_id=env_id,
                                eval_episodes=eval_episodes, eval_every=eval_every, ray_address=ray, num_cpus=cpus,
                                num_gpus=gpus, settings=settings, on_trial=finished)
    if as_json:
        print_json(outcome)
        return
    results.print((out / "results.md").read_text().rstrip())
    ran = outcome["ran"]
    results.print(f"{ran['trials']} trials run, {ran['skipped']} already finished, in {ran['seconds']:.0f}s"
                  + (f" on Ray ({ran['ray']})" if ran["ray"] else "") + f"; results in {out}")
