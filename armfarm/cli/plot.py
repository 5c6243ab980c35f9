"""``armfarm plot``: evaluation curves of one or more run directories in one figure."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import results, user_errors


def plot(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories of `armfarm train --env` or `train-online`."),
    out: Path = typer.Option(Path("curves.png"), "--out", help="Image to write (.png, .pdf or .svg)."),
    normalized: bool = typer.Option(False, "--normalized", help="Plot the D4RL-normalised score, not the return."),
    title: str = typer.Option(None, "--title", help="Figure title."),
) -> None:
    """Plot the evaluation curves of RUN_DIRS on one axes, e.g. to compare algorithms on one store."""
    from armfarm.evaluate.plots import plot_runs

    with user_errors():
        path = plot_runs(run_dirs, out, normalized=normalized, title=title)
    results.print(f"wrote {path}")
