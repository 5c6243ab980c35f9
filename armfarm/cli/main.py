"""The ``armfarm`` command line: one module per verb, each a thin shell over a library function."""

from __future__ import annotations

import typer

from armfarm import __version__
from armfarm.cli import data, datasets, demo, farm, fleet, shield
from armfarm.cli.algos import algos
from armfarm.cli.collect import collect
from armfarm.cli.evaluate import evaluate
from armfarm.cli.finetune import finetune
from armfarm.cli.instruct import instruct
from armfarm.cli.ope import ope
from armfarm.cli.plot import plot
from armfarm.cli.serve import serve
from armfarm.cli.sweep import sweep
from armfarm.cli.train import train
from armfarm.cli.train_online import train_online

app = typer.Typer(
    help="armfarm: collect robot experience into a durable store and learn policies with offline RL.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(datasets.app, name="datasets")
app.add_typer(fleet.app, name="fleet")
app.add_typer(farm.app, name="farm")
app.add_typer(shield.app, name="shield")
app.command("algos")(algos)
app.command("collect")(collect)
app.command("train")(train)
app.command("train-online")(train_online)
app.command("finetune")(finetune)
app.command("ope")(ope)
app.command("sweep")(sweep)
app.command("eval")(evaluate)
app.command("instruct")(instruct)
app.command("plot")(plot)
app.add_typer(demo.app, name="demo")
app.command("serve")(serve)


@app.command("version")
def version() -> None:
    """Print the armfarm version."""
    print(__version__)


if __name__ == "__main__":
    app()
