"""Shared CLI plumbing: Rich progress bars, clean error exits, and results on stdout (progress on stderr)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, soft_wrap=True)  # progress, logs, warnings and errors
results = Console(soft_wrap=True)  # what a command found or made: stdout, so it pipes (`| grep`)

# Errors a user can fix: shown as one clear line instead of a traceback.
USER_ERRORS = (
    ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError,
    KeyError, RuntimeError, FloatingPointError,
)


def progress_bar() -> Progress:
    """A progress bar on stderr, so that ``--json`` output on stdout stays machine-readable."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console,
    )


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into ``error: ...`` on stderr and exit code 2."""
    try:
        yield
    except USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        console.print(f"[bold red]error:[/] {message}", highlight=False)
        raise typer.Exit(code=2) from None


def print_json(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
