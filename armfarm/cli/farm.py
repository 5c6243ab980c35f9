"""``armfarm farm``: init, run, status and rollback of a farm (a thin shell over armfarm.farm)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from armfarm.cli.common import console, print_json, results, user_errors

app = typer.Typer(help="Run the whole collect -> learn -> evaluate -> publish loop, unattended.", no_args_is_help=True)

FARM_DIR = typer.Argument(..., help="The farm directory (farm.toml, store, rounds, logs).")


def _fmt(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def round_row(record: dict) -> list[str]:
    evaluation = (record.get("candidate") or {}).get("eval") or {}
    baseline = ((record.get("baseline") or {}).get("eval")) or {}
    verdict = {True: "[green]promoted[/]", False: "kept", None: record.get("phase", "")}[record.get("promoted")]
    return [str(record["round"]), str(record.get("episodes_used", "")), str(record.get("transitions_used", "")),
            f"{_fmt(evaluation.get('return_mean'))} [{_fmt(evaluation.get('ci_low'))}, {_fmt(evaluation.get('ci_high'))}]",
            _fmt(baseline.get("return_mean")), verdict,
            "-" if record.get("policy_version") is None else f"v{record['policy_version']}"]


def rounds_table(records: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in ("round", "episodes", "transitions", "candidate return [interval]", "live return", "decision", "live"):
        table.add_column(column, justify="right" if column not in ("decision",) else "left")
    for record in records:
        table.add_row(*round_row(record))
    return table


@app.command("init")
def init(
    farm_dir: Path = FARM_DIR,
    env: str = typer.Option(..., "--env", help="Gymnasium environment id the robots run."),
    robots: int = typer.Option(None, "--robots", help="Robot processes (default 2)."),
    algo: str = typer.Option(None, "--algo", help="Offline algorithm for the candidates (default iql)."),
    overrides: list[str] = typer.Option([], "--set", help="Setting KEY=VALUE (repeatable); algo_config.NAME=VALUE "
                                                          "for the algorithm's config."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write farm.toml again with these settings."),
) -> None:
    """Write FARM_DIR/farm.toml: every setting with its default and a comment."""
    from armfarm.farm.config import init as init_farm
    from armfarm.overrides import parse_pairs

    with user_errors():
        config = init_farm(farm_dir, env, robots, algo, parse_pairs(overrides), overwrite=overwrite)
    results.print(f"wrote {farm_dir / 'farm.toml'}: {config.robots} robots in {config.env}, {config.algo}; "
                  f"start it with `armfarm farm run {farm_dir}`", highlight=False)


@app.command("run")
def run(
    farm_dir: Path = FARM_DIR,
    rounds: int = typer.Option(None, "--rounds", min=1, help="Stop after this many more rounds are decided."),
    minutes: float = typer.Option(None, "--minutes", min=0.01, help="Stop after this many minutes."),
    ray: str = typer.Option(None, "--ray", help="Run the robots, learner and evaluator as Ray actors on this cluster "
                                               "(an address, or 'local'); FARM_DIR must be on a shared filesystem."),
) -> None:
    """Start the farm, or resume it from whatever is on disk; Ctrl-C stops it gracefully."""
    from armfarm.farm.state import FarmLocked
    from armfarm.farm.supervisor import FarmError, run_farm

    def on_event(kind: str, payload: dict) -> None:
        if kind == "started":
            console.print(f"farm {farm_dir}: {len(payload['components'])} components started; "
                          f"dashboard {payload['url']}/dashboard (admin token: {farm_dir / 'admin.token'})")
        elif kind == "round":
            row = round_row(payload["record"])
            results.print(f"round {row[0]}: {row[1]} episodes, candidate {row[3]} vs live {row[4]}: {row[5]} "
                          f"(live {row[6]})")
            console.print(f"  {payload['record']['reason']}", highlight=False)
        elif kind in ("died", "killed"):
            console.print(f"[yellow]{kind}:[/] {payload}", highlight=False)
        elif kind == "stopping":
            console.print(f"stopping: {payload['reason']}", highlight=False)

    failure = None
    with user_errors():
        try:
            report = run_farm(farm_dir, rounds=rounds, minutes=minutes, on_event=on_event, ray_address=ray)
        except (FarmError, FarmLocked) as e:  # the farm ran (or runs) but cannot go on: exit code 1
            failure = e
    if failure is not None:
        console.print(f"[bold red]error:[/] {failure}", highlight=False)
        raise typer.Exit(code=1)
    results.print(f"farm stopped ({report.stopped_because}) after {report.seconds:.0f}s; "
                  f"{report.rounds_decided} round(s) decided this run", highlight=False)


@app.command("status")
def status(
    farm_dir: Path = FARM_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print the full status as JSON."),
) -> None:
    """Show the farm's rounds, live policy, robots and components (while it runs or after)."""
    from armfarm.farm.status import farm_status

    with user_errors():
        state = farm_status(farm_dir)
    if as_json:
        print_json(state)
        return
    running = f"running (pid {state['supervisor_pid']})" if state["running"] else "stopped"
    live = "none (robots run the default behaviour)" if state["policy_version"] is None else f"v{state['policy_version']}"
    results.print(f"farm {state['farm']}: {running}; {state['env']}, {state['algo']}; live policy {live}; "
                  f"{state['episodes']} episodes, {state['transitions']} transitions stored", highlight=False)
    results.print(rounds_table(state["rounds"], "rounds"))
    robots = Table(title="robots")
    for column in ("robot", "pid", "alive", "acked", "spooled", "rejected", "policy", "last seen", "restarts"):
        robots.add_column(column)
    for r in state["robots"]:
        robots.add_row(r["robot_id"], str(r["pid"]), "yes" if r["alive"] else "no", str(r["episodes_acked"]),
                       str(r["pending"]), str(r["rejected"]), "-" if r["policy_version"] is None else f"v{r['policy_version']}",
                       r["last_seen"] or "-", str(r["restarts"]))
    results.print(robots)
    components = Table(title="components")
    for column in ("component", "pid", "alive", "restarts"):
        components.add_column(column)
    for c in state["components"]:
        components.add_row(c["name"], str(c["pid"]), "yes" if c["alive"] else "no", str(c["restarts"]))
    results.print(components)
    for robot_id in state["uploads_deferred"]:
        error = next(r["last_error"] for r in state["robots"] if r["robot_id"] == robot_id)
        results.print(f"[yellow]uploads deferred[/] for {robot_id} (kept in its spool): {error}", highlight=False)


@app.command("rollback")
def rollback(
    farm_dir: Path = FARM_DIR,
    to: int = typer.Option(None, "--to", min=1, help="Version to go back to (default: the promotion before the live one)."),
) -> None:
    """Republish an earlier policy version; robots follow it at their next episode."""
    from armfarm.farm.status import rollback as do_rollback

    with user_errors():
        entry = do_rollback(farm_dir, to)
    results.print(f"rolled back to v{entry['rolled_back_to']} (round {entry['round']}), published as v{entry['version']}",
                  highlight=False)
