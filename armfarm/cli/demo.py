"""``armfarm demo``: collect mixed data, train BC and IQL, and compare them with the data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from armfarm.cli.common import progress_bar, results, user_errors


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Directory for the store, runs, plot and summary."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for collection and training."),
) -> None:
    """Show offline RL beating both its data and behaviour cloning (needs no network)."""
    from armfarm.demo import DemoConfig, run_demo

    config = DemoConfig(seed=seed)
    with user_errors(), progress_bar() as bar:
        tasks: dict[str, int] = {}

        def on_train_progress(algo: str, step: int, total: int) -> None:
            if algo not in tasks:
                tasks[algo] = bar.add_task(f"train {algo}", total=total, info="")
            bar.update(tasks[algo], completed=step)

        summary = run_demo(out, config, log=bar.console.print, on_train_progress=on_train_progress)
    table = Table(title=f"armfarm demo: {summary['env_id']} ({summary['dataset']['transitions']} transitions)")
    table.add_column("policy")
    table.add_column("return (mean ± std)", justify="right")
    for name in ("behavior", "bc", summary["offline_algo"]):
        row = summary[name]
        table.add_row(name if name != "behavior" else "data (behaviour)", f"{row['return_mean']:.1f} ± {row['return_std']:.1f}")
    results.print(table)
    results.print(f"plot: {summary['plot']}\nsummary: {out / 'summary.json'} ({summary['seconds']:.0f}s)")
