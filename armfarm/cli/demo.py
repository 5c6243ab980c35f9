"""``armfarm demo``: the farm end to end (default), or ``armfarm demo offline``: offline RL vs its data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from armfarm.cli.common import console, progress_bar, results, user_errors

app = typer.Typer(help="Demos that need no network: the farm (default) and offline RL (offline).",
                  invoke_without_command=True)


@app.callback()
def demo(
    ctx: typer.Context,
    out: Path = typer.Option(Path("demo_out"), "--out", help="Directory for the farm, plot and summary."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of initialisation and sampling."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port of the demo's fleet server and dashboard."),
) -> None:
    """A short farm: robots start from a poor behaviour, rounds of IQL with gated promotion improve it."""
    if ctx.invoked_subcommand is not None:
        return
    from armfarm.cli.farm import round_row
    from armfarm.farm.demo import FarmDemoConfig, run_farm_demo

    def on_round(record: dict) -> None:
        row = round_row(record)
        results.print(f"round {row[0]}: {row[1]:>4} episodes  candidate {row[3]}  vs live {row[4]}  -> {row[5]} "
                      f"(live {row[6]})")

    with user_errors():
        summary = run_farm_demo(out, FarmDemoConfig(seed=seed, port=port), log=console.print, on_round=on_round)
    b, f = summary["behavior"], summary["final"]
    results.print(f"default behaviour {b['return_mean']:.1f} ± {b['return_std']:.1f}  ->  live policy "
                  f"v{f['policy_version']} {f['return_mean']:.1f} ± {f['return_std']:.1f} "
                  f"({summary['episodes']} episodes, {summary['seconds']:.0f}s)", highlight=False)
    results.print(f"plot: {summary['plot']}\nsummary: {out / 'summary.json'}\nfarm: {summary['farm']} "
                  f"(armfarm farm status {summary['farm']})", highlight=False)


@app.command("offline")
def offline(
    out: Path = typer.Option(Path("demo_out_offline"), "--out", help="Directory for the store, runs, plot and summary."),
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
    table = Table(title=f"armfarm demo offline: {summary['env_id']} ({summary['dataset']['transitions']} transitions)")
    table.add_column("policy")
    table.add_column("return (mean ± std)", justify="right")
    for name in ("behavior", "bc", summary["offline_algo"]):
        row = summary[name]
        table.add_row(name if name != "behavior" else "data (behaviour)", f"{row['return_mean']:.1f} ± {row['return_std']:.1f}")
    results.print(table)
    results.print(f"plot: {summary['plot']}\nsummary: {out / 'summary.json'} ({summary['seconds']:.0f}s)")
