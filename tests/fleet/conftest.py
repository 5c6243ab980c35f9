"""Fleet fixtures: one real server per test module and index backend, and fresh robots."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for fleetlib

from fleetlib import ThreadServer  # noqa: E402

from armfarm.fleet.server import ServerConfig  # noqa: E402


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request) -> str:
    """The index of the module's store: ``"sqlite"`` or a PostgreSQL URL."""
    if request.param == "sqlite":
        return "sqlite"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    """A fleet server (uvicorn, loopback, default limits) over a fresh store. Its tests send many bad
    tokens on purpose, so the per-address limit on those is raised (test_attacks checks it)."""
    store = tmp_path_factory.mktemp("fleet") / "store"
    with ThreadServer(ServerConfig(store=store, index_url=backend, unauthenticated_burst=100_000)) as running:
        yield running


@pytest.fixture
def robot(server):
    """A newly registered Hopper robot: ``(robot_id, token)``."""
    return server.register()
