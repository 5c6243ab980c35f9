"""``armfarm fleet``: register robots, publish policies, run robots and simulated fleets."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import console, print_json, progress_bar, results, user_errors

app = typer.Typer(help="Register robots, publish policies, run a robot or a simulated fleet.", no_args_is_help=True)

SERVER = typer.Option("http://127.0.0.1:8000", "--server", help="Base URL of the fleet server.")
ADMIN_TOKEN = typer.Option(..., "--token-file", help="File holding the admin token (e.g. STORE/admin.token).")


@app.command("register")
def register(
    robot_id: str = typer.Argument(..., help="Name of the robot, e.g. arm-1."),
    env_id: str = typer.Option(..., "--env", help="The robot's Gymnasium environment (its spaces are registered)."),
    server: str = SERVER,
    token_file: Path = ADMIN_TOKEN,
    out: Path = typer.Option(None, "--out", help="Write the robot's token to this file (mode 0600) instead of stdout."),
    key_out: Path = typer.Option(None, "--key-out",
                                 help="Write the server's policy signing key here, for the robot to pin "
                                      "(--signing-key). Default with --out: OUT with the suffix .pub."),
    rotate: bool = typer.Option(False, "--rotate", help="If the robot is registered already, issue it a new token."),
) -> None:
    """Register ROBOT_ID with the server and print its token (shown only once) and the key it pins."""
    from armfarm.fleet.admin import Admin, read_token, write_token

    with user_errors(), Admin(server, read_token(token_file)) as admin:
        answer = admin.register(robot_id, env_id, rotate_if_registered=rotate)
    if key_out is None and out is not None:
        key_out = out.with_suffix(".pub")
    if key_out is not None:
        key_out.write_text(answer["signing_key"] + "\n")
    if out is None:
        print(answer["token"])
    else:
        write_token(out, answer["token"])
        console.print(f"robot {robot_id} registered; its token is in {out}")
    if key_out is None:
        console.print(f"the robot pins the policy signing key {answer['signing_key']} (--signing-key)", highlight=False)
    else:
        console.print(f"the policy signing key it pins is in {key_out} (fleet robot --signing-key {key_out})")


@app.command("deregister")
def deregister(
    robot_id: str = typer.Argument(..., help="The robot whose registration to remove."),
    server: str = SERVER,
    token_file: Path = ADMIN_TOKEN,
) -> None:
    """Remove ROBOT_ID's registration (to correct a bad one); its stored episodes stay.

    Its token stops working. When it was the last robot and the store holds no episode yet, the store's
    spaces are released too, so `fleet register` can bind the right ones.
    """
    from armfarm.fleet.admin import Admin, read_token

    with user_errors(), Admin(server, read_token(token_file)) as admin:
        answer = admin.deregister(robot_id)
    released = "; the store's spaces are released" if answer["spec_released"] else ""
    results.print(f"robot {robot_id} deregistered{released}")


@app.command("publish")
def publish(
    policy: Path = typer.Argument(..., help="A run directory, checkpoint directory (checkpoints/step_N) or policy.npz."),
    server: str = SERVER,
    token_file: Path = ADMIN_TOKEN,
    shield: Path = typer.Option(None, "--shield", help="A shield directory (`armfarm shield fit`) to ship inside "
                                                       "the policy: robots then run the policy behind it."),
    as_json: bool = typer.Option(False, "--json", help="Print the new version's description as JSON."),
) -> None:
    """Publish a policy from `armfarm train`; robots switch to it (and its shield) at their next episode."""
    from armfarm.envs.behavior import resolve_policy_path
    from armfarm.fleet.admin import Admin, read_token

    with user_errors(), Admin(server, read_token(token_file)) as admin:
        path = resolve_policy_path(policy)
        answer = admin.publish(path, source=str(policy), shield=shield)
    if as_json:
        print_json(answer)
    else:
        shipped = f" with the shield {shield}" if shield is not None else ""
        results.print(f"published {path}{shipped} as policy version {answer['version']} "
                      f"(sha256 {answer['sha256'][:12]})")


@app.command("robot")
def robot(
    robot_id: str = typer.Argument(..., help="The robot's registered name."),
    env_id: str = typer.Option(..., "--env", help="Gymnasium environment id."),
    token_file: Path = typer.Option(..., "--token-file", help="File holding the robot's token."),
    server: str = SERVER,
    spool: Path = typer.Option(None, "--spool", help="Directory buffering unacknowledged episodes (default: spool/ROBOT_ID)."),
    episodes: int = typer.Option(None, "--episodes", min=1, help="Episodes to record (default: until interrupted)."),
    behavior: str = typer.Option("random", "--default-behavior", help="What to run before a policy is published."),
    noise: float = typer.Option(0.0, "--noise", min=0.0, help="Std of Gaussian noise added to actions."),
    seed: int = typer.Option(0, "--seed", min=0, help="Episode i is reset with seed + i."),
    drain_timeout: float = typer.Option(600.0, "--drain-timeout", help="Seconds to wait for the last acks."),
    allow_insecure_http: bool = typer.Option(False, "--allow-insecure-http",
                                             help="Allow plain HTTP to a server off loopback (clear-text tokens)."),
    signing_key: str = typer.Option(None, "--signing-key",
                                    help="The server's policy signing key (ed25519:...) or a file holding it, "
                                         "from `fleet register`. Default: pinned on first contact."),
    shield: Path = typer.Option(None, "--shield", help="Shield directory every action passes through "
                                                       "(`armfarm shield fit`); if it cannot be loaded the robot does not move."),
) -> None:
    """Run one robot: act in ENV, record episodes, upload them, follow published policies."""
    from armfarm.fleet.admin import read_token
    from armfarm.fleet.client import ClientConfig, FleetClient
    from armfarm.shield import ShieldError

    refused = None
    with user_errors():
        config = ClientConfig(server=server, token=read_token(token_file), robot_id=robot_id, env_id=env_id,
                              spool_dir=spool or Path("spool") / robot_id, default_behavior=behavior,
                              noise=noise, seed=seed, allow_insecure_http=allow_insecure_http,
                              signing_key=signing_key, shield=shield)
        with progress_bar() as bar:
            task = bar.add_task(f"robot {robot_id}", total=episodes, info="acknowledged")
            with FleetClient(config, on_ack=lambda ack: bar.advance(task)) as client:
                try:
                    client.run(episodes)
                except KeyboardInterrupt:
                    console.print("stopping; unacknowledged episodes stay in the spool")
                except ShieldError as e:  # the robot does not move, but what it recorded still uploads
                    refused = e
                drained = client.drain(drain_timeout)
    if refused is not None:
        console.print(f"[bold red]error:[/] {refused}", highlight=False)
        raise typer.Exit(code=2)
    if not drained:
        console.print(f"[red]error:[/] episodes still unacknowledged in {config.spool_dir}; they upload on the next start")
        raise typer.Exit(code=1)


@app.command("sim")
def sim(
    server: str = SERVER,
    token_file: Path = ADMIN_TOKEN,
    env_id: str = typer.Option(..., "--env", help="Gymnasium environment id, e.g. Hopper-v5."),
    robots: int = typer.Option(4, "--robots", min=1, help="Robot processes."),
    episodes: int = typer.Option(10, "--episodes", min=1, help="Episodes per robot."),
    ack_log: Path = typer.Option(None, "--ack-log", help="Append every acknowledged episode here, one JSON line each."),
    spool: Path = typer.Option(None, "--spool", help="Keep robot spools here (default: a temporary directory)."),
    prefix: str = typer.Option("sim", "--prefix", help="Robots are named PREFIX-0 .. PREFIX-(N-1)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Base seed of the robots' episodes."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Cut episodes after this many steps."),
    noise: float = typer.Option(0.0, "--noise", min=0.0, help="Std of Gaussian noise added to actions."),
    drain_timeout: float = typer.Option(600.0, "--drain-timeout", help="Seconds each robot waits for its last acks."),
    shield: Path = typer.Option(None, "--shield", help="Shield directory every robot's actions pass through "
                                                       "(`armfarm shield fit`); a robot that cannot load it does not move."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Run N simulated robots (processes with real environments) against a fleet server."""
    from armfarm.fleet.admin import read_token
    from armfarm.fleet.sim import run_sim

    with user_errors(), progress_bar() as bar:
        task = bar.add_task(f"{robots} robots", total=robots * episodes, info="acknowledged")
        report = run_sim(server, read_token(token_file), env_id, robots, episodes, ack_log=ack_log,
                         spool_dir=spool, prefix=prefix, seed=seed, max_steps=max_steps, noise=noise,
                         drain_timeout_s=drain_timeout, on_ack=lambda n: bar.advance(task), shield=shield)
    if as_json:
        print_json({**report.__dict__, "ok": report.ok})
    else:
        results.print(f"{report.acked} episodes ({report.transitions} transitions) acknowledged from "
                      f"{report.robots} robots in {report.seconds:.1f}s")
    for failure in report.failures:
        console.print(f"[red]error:[/] {failure}", highlight=False)
    if report.rejected:
        console.print(f"[red]error:[/] {report.rejected} episodes rejected; see {report.spool_dir}/*/rejected")
    if not report.ok:
        raise typer.Exit(code=1)
