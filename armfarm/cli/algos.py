"""``armfarm algos``: the registered algorithms, and each one's config fields (what ``--set`` takes)."""

from __future__ import annotations

import typer

from armfarm.cli import common


def algos(
    name: str = typer.Argument(None, help="An algorithm: list its config fields, types, defaults and docs."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (the README's)."),
) -> None:
    """List the registered algorithms, or NAME's config fields (each settable with --set KEY=VALUE)."""
    from rich.table import Table

    from armfarm.algos import algorithms, describe_config, get_algorithm

    with common.user_errors():
        if name is None:
            rows = [(a.name, a.kind, "states, images" if a.images else "states and goals" if a.goal_conditioned
                     else "states", "discrete" if a.discrete else "continuous", a.summary)
                    for a in algorithms().values()]
            header = ("name", "kind", "observations", "actions", "what it is")
        else:
            algo = get_algorithm(name)
            rows = [(f, kind, repr(default), doc) for f, kind, default, doc in describe_config(algo.config_cls)]
            header = ("field", "type", "default", "what it sets")
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(f"`{row[0]}`" if i == 0 else str(c).replace("|", "\\|") for i, c in enumerate(row))
                  + " |")
        return
    table = Table(*header, title=None if name is None else f"{name}: armfarm train {name} STORE --set FIELD=VALUE")
    for row in rows:
        table.add_row(*map(str, row))
    common.results.print(table)
