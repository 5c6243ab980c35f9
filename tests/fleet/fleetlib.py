"""Helpers for the fleet tests: real servers on free loopback ports, robots, and episode bodies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from postgres_cluster import free_port

from armfarm.data import ArraySpec, EpisodeStore, StoreSpec
from armfarm.fleet.payload import encode, wire_arrays
from armfarm.fleet.server import ServerConfig, create_app

# The spaces of Hopper-v5 as StoreSpec.from_gymnasium records them, so synthetic robots and robots
# running the real environment can share one store.
HOPPER_SPEC = StoreSpec(ArraySpec((11,), "float32"), ArraySpec((3,), "float32", [-1.0] * 3, [1.0] * 3))
CREATED_AT = "2024-05-01T12:00:00+00:00"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def binary(token: str) -> dict[str, str]:
    return {**bearer(token), "Content-Type": "application/octet-stream"}


def wait_healthy(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no healthy server at {url} after {timeout}s")


class ThreadServer:
    """A real uvicorn server for ``config``, in a thread of the test process."""

    def __init__(self, config: ServerConfig, port: int | None = None):
        self.config = config
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(config)
        self.fleet = self.app.state.fleet
        self.store: EpisodeStore = self.fleet.store
        self.admin_token = self.fleet.admin_token_path.read_text().strip()

    def __enter__(self) -> ThreadServer:
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_healthy(self.url)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def register(self, robot_id: str | None = None, spec: StoreSpec = HOPPER_SPEC, env_id: str = "Hopper-v5"):
        """Register a robot (a fresh id by default); return its id and token."""
        robot_id = robot_id or f"r-{uuid.uuid4().hex[:10]}"
        response = httpx.post(f"{self.url}/v1/robots", headers=bearer(self.admin_token),
                              json={"robot_id": robot_id, "env_id": env_id, "spec": spec.to_dict()})
        assert response.status_code == 201, response.text
        return robot_id, response.json()["token"]


def cache_policy(spool: Path, server: ThreadServer, version: int, content: bytes, signer=None) -> str:
    """Put ``content`` in a robot's spool as policy ``version`` it downloaded earlier, signed by
    ``signer`` (the server's key by default), as a robot restarting with a cached policy finds it."""
    import hashlib
    import json

    digest = hashlib.sha256(content).hexdigest()
    signature = (signer or server.fleet.registry.signer).sign(version, digest)
    (spool / "policy").mkdir(parents=True, exist_ok=True)
    (spool / "policy" / f"{digest}.npz").write_bytes(content)
    (spool / "policy" / "current.json").write_text(
        json.dumps({"version": version, "sha256": digest, "signature": signature}))
    return digest


class ProcessServer:
    """``armfarm serve STORE`` in a subprocess on a fixed free port, which survives restarts."""

    def __init__(self, store: Path, index_url: str = "sqlite", *extra: str):
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "armfarm.cli.main", "serve", str(store), "--port", str(self.port),
                     "--index-url", index_url, *extra]
        self.process: subprocess.Popen | None = None
        self.log = store.parent / f"server-{self.port}.log"

    def start(self) -> ProcessServer:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        wait_healthy(self.url, process=self.process)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def admin_token(self) -> str:
        return (self.store / "admin.token").read_text().strip()


def episode_arrays(rng: np.random.Generator, T: int = 5, obs_dim: int = 11, act_dim: int = 3) -> dict:
    """Valid Hopper-shaped arrays of ``T`` transitions, by wire name."""
    terminated = np.zeros(T, dtype=bool)
    terminated[-1] = True
    return wire_arrays(
        rng.normal(size=(T + 1, obs_dim)).astype(np.float32),
        rng.uniform(-1, 1, size=(T, act_dim)).astype(np.float32),
        rng.normal(size=T).astype(np.float32),
        terminated,
        np.zeros(T, dtype=bool),
    )


def episode_meta(episode_id: str | None = None, **overrides) -> dict:
    meta = {"episode_id": episode_id or uuid.uuid4().hex, "created_at": CREATED_AT, "policy_id": "test",
            "env_id": "Hopper-v5", "seed": 7}
    meta.update(overrides)
    return meta


def episode_body(episode_id: str | None = None, T: int = 5, seed: int = 0, **meta) -> bytes:
    """An encoded valid Hopper episode."""
    return encode(episode_arrays(np.random.default_rng(seed), T), episode_meta(episode_id, **meta))


def store_state(store: EpisodeStore) -> tuple:
    """What must not change when a request is refused: episodes, shards and shard files."""
    return (store.num_episodes, len(store.shards()), sorted(os.listdir(store.path / "shards")))
