"""``armfarm datasets``: D4RL-style benchmark datasets built locally (see :mod:`armfarm.datasets`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from armfarm.cli.common import print_json, progress_bar, results, user_errors

app = typer.Typer(help="Build D4RL-style benchmark datasets locally, with recorded provenance.",
                  no_args_is_help=True)


@app.command("list")
def list_datasets(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """The dataset recipes: name, environment, default size and build time on a 2-core CPU."""
    from armfarm.datasets import list_recipes

    rows = list_recipes()
    if as_json:
        print_json({"recipes": rows})
        return
    table = Table(title="dataset recipes (D4RL-style, built locally)")
    for column in ("name", "env", "kind", "transitions", "SAC budget", "build time (2 cores)"):
        table.add_column(column, no_wrap=column in ("name", "env"))
    for r in rows:
        size = f"{r['size']:,}" if r["size"] else "SAC replay buffer"
        table.add_row(r["name"], r["env_id"], r["kind"], size,
                      f"{r['sac_steps']:,}" if r["sac_steps"] else "", r["build_time"])
    results.print(table)


@app.command("build")
def build(
    name: str = typer.Argument(..., help="Recipe name, e.g. hopper-medium or pointmaze-umaze (see `datasets list`)."),
    store: Path = typer.Argument(..., help="New episode store to build into."),
    steps: int = typer.Option(None, "--steps", min=1,
                              help="Transitions in the dataset (medium-replay: the SAC step budget)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the behaviour policy, the environment and the noise."),
    sac_steps: int = typer.Option(None, "--sac-steps", min=1, help="Environment-step budget of the SAC behaviour run."),
    behavior_dir: Path = typer.Option(None, "--behavior-dir",
                                      help="SAC behaviour run directory to reuse or create (default: a cache dir)."),
    as_json: bool = typer.Option(False, "--json", help="Print the recorded provenance as JSON."),
) -> None:
    """Build dataset NAME into STORE, training the SAC behaviour policy first when needed."""
    from armfarm.datasets import build_dataset

    with user_errors(), progress_bar() as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, info="")
            bar.update(tasks[stage], completed=done)

        provenance = build_dataset(name, store, size=steps, seed=seed, sac_steps=sac_steps,
                                   behavior_dir=behavior_dir, on_progress=progress)
    if as_json:
        print_json(provenance)
    results.print(f"built {provenance['name']}: {provenance['episodes']} episodes, {provenance['transitions']} "
                  f"transitions, return {provenance['data_return_mean']:.1f} ± {provenance['data_return_std']:.1f} "
                  f"in {provenance['build_seconds']:.0f}s -> {store}")
