"""Admin calls to a fleet server: register robots and publish policies (with the admin token)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from armfarm.fleet.payload import CONTENT_TYPE


class AdminError(RuntimeError):
    """The server refused an admin request, or could not be reached; the message says which."""


def read_token(path: str | Path) -> str:
    """The token in a token file (one line). Raises FileNotFoundError or ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no token file at {path}")
    token = path.read_text().strip()
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"token file {path} must hold exactly one token")
    return token


def write_token(path: str | Path, token: str) -> None:
    """Write a token file readable by its owner only (mode 0600)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)


def env_spec(env_id: str) -> dict:
    """The observation and action spaces of ``env_id`` as a registration sends them."""
    from armfarm.data import StoreSpec
    from armfarm.envs.registry import make_env

    env = make_env(env_id)
    try:
        return StoreSpec.from_gymnasium(env.observation_space, env.action_space).to_dict()
    finally:
        env.close()


class Admin:
    """An admin session with a fleet server.

    Args:
        server: base URL, e.g. ``http://127.0.0.1:8000``.
        token: the admin token (``STORE/admin.token``).
        wait_s: keep retrying for this long while the server is unreachable (it may be starting).
    """

    def __init__(self, server: str, token: str, wait_s: float = 0.0, timeout_s: float = 60.0):
        self.server = server
        self.wait_s = wait_s
        self.http = httpx.Client(base_url=server, timeout=timeout_s, headers={"Authorization": f"Bearer {token}"})

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()

    def _request(self, method: str, url: str, **kwargs) -> Any:
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                response = self.http.request(method, url, **kwargs)
                break
            except httpx.TransportError as e:
                if time.monotonic() >= deadline:
                    raise AdminError(f"cannot reach the fleet server at {self.server}: {e}") from None
                time.sleep(0.2)
        if response.status_code >= 400:
            try:
                detail = response.json()["detail"]
            except (ValueError, KeyError, TypeError):
                detail = response.text[:500]
            raise AdminError(f"{method} {url}: {response.status_code}: {detail}")
        return response.json()

    def register(self, robot_id: str, env_id: str, spec: dict | None = None, rotate_if_registered: bool = False) -> dict:
        """Register ``robot_id`` with ``env_id``'s spaces; return the server's answer (with ``token``).

        ``spec`` is the spaces as :func:`env_spec` gives them (computed here if not given). With
        ``rotate_if_registered``, an already registered robot is issued a new token instead.
        """
        body = {"robot_id": robot_id, "env_id": env_id, "spec": spec or env_spec(env_id)}
        try:
            return self._request("POST", "/v1/robots", json=body)
        except AdminError as e:
            if not (rotate_if_registered and "already registered" in str(e)):
                raise
        return self.token(robot_id)

    def deregister(self, robot_id: str) -> dict:
        """Remove ``robot_id``'s registration; return the server's answer (``spec_released``, ...)."""
        return self._request("DELETE", f"/v1/robots/{robot_id}")

    def token(self, robot_id: str) -> dict:
        """Issue ``robot_id`` a new token (its old one stops working); return the server's answer."""
        return self._request("POST", f"/v1/robots/{robot_id}/token")

    def episodes(self, prefix: str = "", page: int = 1000) -> Iterator[dict]:
        """Every stored episode whose id starts with ``prefix``, in commit order (``GET /v1/episodes``)."""
        after: int | None = 0
        while after is not None:
            answer = self._request("GET", "/v1/episodes", params={"prefix": prefix, "after": after, "limit": page})
            yield from answer["episodes"]
            after = answer["next"]

    def publish(self, policy_file: str | Path, source: str = "", shield: str | Path | None = None) -> dict:
        """Publish a ``policy.npz`` (with ``shield``, a shield directory, shipped inside it, so robots
        update both together); return the new version's description."""
        if shield is None:
            data = Path(policy_file).read_bytes()
        else:
            from armfarm.shield import attach_shield

            with tempfile.TemporaryDirectory() as tmp:
                data = attach_shield(policy_file, shield, Path(tmp) / "policy.npz").read_bytes()
        return self._request("POST", "/v1/policies", content=data, params={"source": source},
                             headers={"Content-Type": CONTENT_TYPE})
