"""``armfarm collect``: parallel collectors writing episodes into a store."""

from __future__ import annotations

from pathlib import Path

import typer

from armfarm.cli.common import progress_bar, results, user_errors


def collect(
    env_id: str = typer.Argument(..., help="Gymnasium environment id, e.g. Hopper-v5 or PointMaze_UMazeDense-v3."),
    store: str = typer.Argument(..., help="Episode store to write into (created if missing), or with --ray the "
                                         "http(s):// URL of a fleet server (`armfarm serve`) to upload to."),
    policy: str = typer.Option(
        "random", "--policy",
        help="random, maze-expert, maze-mixed, or PATH to a policy.npz / run dir / checkpoint dir.",
    ),
    episodes: int = typer.Option(..., "--episodes", min=1, help="Number of episodes to collect."),
    workers: int = typer.Option(1, "--workers", min=1, help="Collector processes."),
    noise: float = typer.Option(0.0, "--noise", min=0.0, help="Std of Gaussian noise added to actions."),
    seed: int = typer.Option(0, "--seed", min=0, help="Episode i is reset with seed + i."),
    good_fraction: float = typer.Option(0.5, "--good-fraction", min=0.0, max=1.0,
                                        help="maze-mixed only: share of episodes that head for the real goal."),
    ray: str = typer.Option(None, "--ray", help="Run the workers as Ray actors spread over this cluster: an address "
                                               "(auto, HOST:PORT, ray://HOST:PORT) or 'local'. STORE must be on a "
                                               "filesystem every node shares."),
    index: str = typer.Option(None, "--index", help="A new store's index: sqlite (default) or a postgresql:// URL "
                                                    "(needed when machines share the store)."),
    token_file: Path = typer.Option(None, "--token-file", help="With a fleet server as STORE: the file holding its "
                                                               "admin token (STORE/admin.token on the server)."),
    allow_insecure_http: bool = typer.Option(False, "--allow-insecure-http",
                                             help="Allow plain HTTP to a fleet server off loopback (clear-text tokens)."),
) -> None:
    """Run a behaviour policy in ENV_ID with W workers (processes, or Ray actors with --ray) and write every
    episode to STORE: a store directory, or with --ray a fleet server the collectors upload to as robots."""
    from armfarm.collect import collect as run_collect
    from armfarm.collect import is_server_url
    from armfarm.envs.behavior import BehaviorSpec
    from armfarm.fleet.admin import read_token

    spec = BehaviorSpec(policy=policy, noise=noise, good_fraction=good_fraction)
    with user_errors(), progress_bar() as bar:
        token = read_token(token_file) if token_file is not None else None
        target = store if is_server_url(store) else Path(store)
        task = bar.add_task("collecting", total=episodes, info="acknowledged" if is_server_url(store) else "")
        report = run_collect(env_id, target, spec, episodes, workers=workers, seed=seed,
                             on_progress=lambda n: bar.advance(task, n), ray_address=ray, index_url=index,
                             admin_token=token, allow_insecure_http=allow_insecure_http)
    results.print(
        f"wrote {report.episodes} episodes ({report.transitions} transitions) to {store}; "
        f"return {report.return_mean:.2f} ± {report.return_std:.2f}"
    )
