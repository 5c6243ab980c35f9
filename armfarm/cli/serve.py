"""``armfarm serve``: the fleet server over an episode store."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import typer

from armfarm.cli.common import console, user_errors


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _farm_status(farm: Path | None):
    """The farm's status for the dashboard, or None; a farm that cannot be read shows as an error."""
    if farm is None:
        return None
    from armfarm.farm.status import farm_status

    def status() -> dict:
        try:
            return farm_status(farm)
        except (OSError, ValueError) as e:
            return {"error": str(e), "rounds": [], "robots": [], "components": [], "learner": None,
                    "policy_version": None, "env": "?", "running": False}

    return status


def serve(
    store: Path = typer.Argument(..., help="Episode store to write into (created if missing)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback only by default)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    index_url: str = typer.Option(None, "--index-url",
                                  help="Index of a new store: sqlite (default) or postgresql://USER@HOST:PORT/DB."),
    admin_token_file: Path = typer.Option(None, "--admin-token-file",
                                          help="Admin token file (created with mode 0600 if missing). "
                                               "Default: STORE/admin.token."),
    max_request_bytes: int = typer.Option(64 << 20, "--max-request-bytes", min=1, help="Largest request body (413 above)."),
    max_episode_steps: int = typer.Option(1_000_000, "--max-episode-steps", min=1,
                                          help="Longest episode accepted, in transitions (413 above)."),
    rate_limit: float = typer.Option(100.0, "--rate-limit", min=0.0,
                                     help="Requests per second per token, on average (429 above; 0: no limit)."),
    rate_burst: int = typer.Option(200, "--rate-burst", min=1, help="Requests a token may send at once."),
    ssl_certfile: Path = typer.Option(None, "--ssl-certfile", help="Serve HTTPS with this certificate (PEM)."),
    ssl_keyfile: Path = typer.Option(None, "--ssl-keyfile", help="Private key of --ssl-certfile (PEM)."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
    max_connections: int = typer.Option(512, "--max-connections", min=1,
                                        help="Connections served at once; more get 503 at once (bounds slow clients)."),
    keep_alive_s: float = typer.Option(5.0, "--keep-alive", min=0.1, help="Seconds an idle connection is kept open."),
    docs: bool = typer.Option(False, "--docs", help="Serve Swagger UI at /docs (it loads its script from a CDN)."),
    signing_key_file: Path = typer.Option(None, "--signing-key-file",
                                          help="Ed25519 key that signs published policies (made with mode 0600 "
                                               "if missing). Default: STORE/fleet/signing.key."),
    farm: Path = typer.Option(None, "--farm", help="The farm directory this server belongs to (shown on /dashboard)."),
) -> None:
    """Serve STORE to a fleet: robots upload episodes and fetch published policies over HTTP."""
    import uvicorn

    from armfarm.fleet.auth import readable_by_others
    from armfarm.fleet.server import ServerConfig, create_app

    with user_errors():
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise ValueError("give both --ssl-certfile and --ssl-keyfile, or neither")
        app = create_app(ServerConfig(
            store=store, index_url=index_url, admin_token_file=admin_token_file,
            max_request_bytes=max_request_bytes, max_episode_steps=max_episode_steps,
            rate_limit=rate_limit, rate_burst=rate_burst, extra_status=_farm_status(farm), docs=docs,
            signing_key_file=signing_key_file,
        ))
    fleet = app.state.fleet
    token_path = fleet.admin_token_path
    if fleet.admin_token_created:
        console.print(f"wrote a new admin token to {token_path} (mode 0600)")
    elif readable_by_others(token_path):
        console.print(f"[yellow]warning:[/] {token_path} is readable by others; chmod 600 it", highlight=False)
    if not _is_loopback(host) and ssl_certfile is None:
        console.print("[yellow]warning:[/] listening beyond loopback without TLS: tokens and episodes travel "
                      "in clear text; pass --ssl-certfile/--ssl-keyfile or serve behind a TLS proxy", highlight=False)
    signer = fleet.registry.signer
    made = "made a new" if signer.created else "the"
    console.print(f"policies are signed with {made} key in {signer.path}; robots pin {signer.public_key}",
                  highlight=False)
    problem = fleet.storage_problem()
    if problem is not None:
        console.print(f"[yellow]warning:[/] {problem}: uploads will be refused with 503 until it is fixed",
                      highlight=False)
    scheme = "https" if ssl_certfile else "http"
    console.print(f"serving {store} on {scheme}://{host}:{port} (API description: /openapi.json)")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log,
                limit_concurrency=max_connections, timeout_keep_alive=keep_alive_s,
                h11_max_incomplete_event_size=64 << 10,
                ssl_certfile=None if ssl_certfile is None else str(ssl_certfile),
                ssl_keyfile=None if ssl_keyfile is None else str(ssl_keyfile))
