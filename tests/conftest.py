"""Shared fixtures: small stores built with real environments, and the index backends to test.

Store and fleet tests take ``index_url``, which runs them once with the default SQLite index and
once with a PostgreSQL index in a throwaway cluster. The PostgreSQL runs are skipped only when
Debian's ``postgresql`` binaries are absent, and never when ``ARMFARM_TEST_POSTGRES=1`` (as in CI).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for postgres_cluster

from postgres_cluster import PG_GLOB, PostgresCluster, find_bindir  # noqa: E402


@pytest.fixture(scope="session")
def hopper_store(tmp_path_factory):
    """A store of 12 random Hopper-v5 episodes collected by two worker processes."""
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec

    path = tmp_path_factory.mktemp("stores") / "hopper"
    collect("Hopper-v5", path, BehaviorSpec("random"), episodes=12, workers=2, seed=0)
    return path


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a database in a PostgreSQL cluster that lives as long as the test session."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("ARMFARM_TEST_POSTGRES") == "1":
            pytest.fail(f"ARMFARM_TEST_POSTGRES=1 but no initdb/pg_ctl under {PG_GLOB}")
        pytest.skip(f"PostgreSQL is not installed (no initdb/pg_ctl under {PG_GLOB}; apt-get install postgresql)")
    with PostgresCluster(bindir) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def index_url(request) -> str:
    """``"sqlite"`` or the URL of the test PostgreSQL database (each store gets its own schema)."""
    if request.param == "sqlite":
        return "sqlite"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def tmpfs():
    """``mount(path, size)``: a small tmpfs at ``path`` (e.g. ``"4m"``), unmounted after the test, for
    full-disk tests. Mounting needs root (here and in CI); the test is skipped where it fails."""
    mounted = []

    def mount(path, size: str):
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="session")
def ray_address():
    """The address of a Ray cluster with token authentication: the one CI starts (``ARMFARM_TEST_RAY_ADDRESS``,
    two nodes), else a two-node local cluster (``ray.cluster_utils.Cluster``, 1 CPU each) for the session.
    Skipped only when Ray is not installed and ``ARMFARM_TEST_RAY`` is not 1 (CI sets it)."""
    try:
        import ray
    except ImportError:
        if os.environ.get("ARMFARM_TEST_RAY") == "1":
            pytest.fail("ARMFARM_TEST_RAY=1 but Ray is not installed (pip install -e '.[ray]')")
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    address = os.environ.get("ARMFARM_TEST_RAY_ADDRESS")
    if address:
        yield address
        ray.shutdown()
        return
    from raylib import local_cluster

    with local_cluster(nodes=2) as cluster:
        yield cluster.address
        ray.shutdown()
