"""Shared fixtures: small stores built with real environments."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")


@pytest.fixture(scope="session")
def hopper_store(tmp_path_factory):
    """A store of 12 random Hopper-v5 episodes collected by two worker processes."""
    from armfarm.collect import collect
    from armfarm.envs.behavior import BehaviorSpec

    path = tmp_path_factory.mktemp("stores") / "hopper"
    collect("Hopper-v5", path, BehaviorSpec("random"), episodes=12, workers=2, seed=0)
    return path
