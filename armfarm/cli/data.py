"""``armfarm data``: import, export, inspect, check and clean episode stores."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from armfarm.cli.common import console, print_json, results, user_errors

app = typer.Typer(help="Import, export, inspect, check and clean episode stores.", no_args_is_help=True)


class ImportFormat(StrEnum):
    minari = "minari"
    d4rl = "d4rl"
    npz = "npz"
    ogbench = "ogbench"


class ExportFormat(StrEnum):
    minari = "minari"


@app.command("import")
def import_(
    fmt: ImportFormat = typer.Argument(..., metavar="{minari,d4rl,npz,ogbench}", help="Layout of SRC."),
    src: Path = typer.Argument(..., help="Minari dataset directory, D4RL-layout .hdf5, .npz, or OGBench .npz file."),
    store: Path = typer.Argument(..., help="Episode store to write into (created if missing)."),
    env_id: str = typer.Option(None, "--env", help="Environment id to record in the episodes' metadata."),
) -> None:
    """Import a dataset into STORE. Nothing is written unless the whole file is valid."""
    from armfarm.data import import_d4rl, import_minari, import_npz, import_ogbench

    with user_errors():
        if fmt is ImportFormat.minari:
            report = import_minari(src, store)
        elif fmt is ImportFormat.d4rl:
            report = import_d4rl(src, store, env_id=env_id)
        elif fmt is ImportFormat.ogbench:
            report = import_ogbench(src, store, env_id=env_id)
        else:
            report = import_npz(src, store, env_id=env_id)
    results.print(f"imported {report.episodes} episodes ({report.transitions} transitions) from {src} into {store}")


@app.command("export")
def export(
    fmt: ExportFormat = typer.Argument(..., metavar="{minari}", help="Output layout."),
    store: Path = typer.Argument(..., help="Episode store to read."),
    dest: Path = typer.Argument(..., help="Directory to write the Minari dataset into."),
    dataset_id: str = typer.Option(None, "--dataset-id", help="Minari dataset id (default: from the store)."),
) -> None:
    """Export STORE as a Minari dataset that ``minari.load_dataset`` reads."""
    from armfarm.data import export_minari

    with user_errors():
        path = export_minari(store, dest, dataset_id=dataset_id)
    results.print(f"exported {store} to {path}")


@app.command("info")
def info(
    store: Path = typer.Argument(..., help="Episode store."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Episodes, transitions, spaces, return and cost statistics, shield interventions and provenance of STORE."""
    from armfarm.data import EpisodeStore

    with user_errors():
        summary = EpisodeStore(store).info()
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"episode store {store}", show_header=False)
    for key in ("episodes", "transitions", "schema_version"):
        table.add_row(key, str(summary.get(key)))
    for key in ("returns", "costs", "lengths"):
        stats = summary.get(key) or {}
        table.add_row(key, ", ".join(f"{k} {v:.4g}" for k, v in stats.items() if v is not None))
    safety = summary.get("safety") or {}
    table.add_row("episodes with cost", str(safety.get("episodes_with_cost", 0)))
    table.add_row("shield interventions", str(safety.get("interventions", 0)))
    if safety.get("end_reasons"):
        table.add_row("early ends", ", ".join(f"{k}: {v}" for k, v in safety["end_reasons"].items()))
    for key in ("spaces", "envs", "policies", "collectors", "nodes", "provenance"):
        table.add_row(key, str(summary.get(key)))
    results.print(table)


@app.command("check")
def check(
    store: Path = typer.Argument(..., help="Episode store."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Verify STORE's integrity (index against shards, lengths, finiteness). Exits 1 on any fault."""
    from armfarm.data import check_store

    with user_errors():
        report = check_store(store)
    payload = {"ok": report.ok, "episodes": report.episodes, "transitions": report.transitions,
               "problems": report.problems, "warnings": report.warnings}
    if as_json:
        print_json(payload)
    else:
        for problem in report.problems:
            results.print(f"[red]fault:[/] {problem}", highlight=False)
        for warning in report.warnings:
            console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        verdict = "[green]ok[/]" if report.ok else "[red]FAULTY[/]"
        results.print(f"{store}: {verdict} ({report.episodes} episodes, {report.transitions} transitions)")
    if not report.ok:
        raise typer.Exit(code=1)


@app.command("gc")
def gc(
    store: Path = typer.Argument(..., help="Episode store."),
    older_than: float = typer.Option(3600.0, "--older-than", min=0.0,
                                     help="Only leftovers at least this many seconds old."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
) -> None:
    """Delete leftovers of interrupted writes (files in tmp/, pending shards). Committed data is never touched."""
    from armfarm.data import EpisodeStore

    with user_errors():
        removed = EpisodeStore(store).collect_garbage(older_than_s=older_than, dry_run=dry_run)
    for name in removed:
        results.print(f"{'would remove' if dry_run else 'removed'} {name}", highlight=False)
    results.print(f"{store}: {len(removed)} leftover(s) {'found' if dry_run else 'removed'}")
