"""armfarm farm rollback: republish an earlier live version as the newest, so robots follow it."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from armfarm.data import EpisodeStore
from armfarm.farm.config import init, load
from armfarm.farm.evaluator import publish, set_live
from armfarm.farm.state import FarmPaths, live
from armfarm.farm.status import rollback
from armfarm.farm.supervisor import prepare
from armfarm.fleet.registry import Registry
from armfarm.policy import NumpyPolicy


def promote(paths, index: int) -> tuple[int, str]:
    rng = np.random.default_rng(index)
    path = paths.run_dir(index) / "policy.npz"
    path.parent.mkdir(parents=True)
    NumpyPolicy([rng.normal(size=(11, 8)), rng.normal(size=(8, 3))], [np.zeros(8), np.zeros(3)],
                action_low=-np.ones(3), action_high=np.ones(3), metadata={"algo": "bc"}).save(path)
    version = publish(paths, path, f"farm round {index}")
    set_live(paths, {"version": version, "round": index, "policy": str(path), "checkpoint": None})
    return version, hashlib.sha256(path.read_bytes()).hexdigest()


def newest(paths):
    return Registry(EpisodeStore(paths.store)).latest_policy()


def test_rollback_republishes_earlier_versions_in_order(tmp_path):
    init(tmp_path / "farm", "Hopper-v5")
    paths = FarmPaths(tmp_path / "farm")
    prepare(paths, load(paths.root))
    with pytest.raises(ValueError, match="no live policy yet"):
        rollback(paths.root)
    promoted = [promote(paths, i) for i in range(3)]  # versions 1, 2, 3
    assert [v for v, _ in promoted] == [1, 2, 3]
    assert publish(paths, paths.run_dir(2) / "policy.npz", "farm round 2") == 3  # publishing is idempotent

    entry = rollback(paths.root)  # back to the promotion before the live one
    assert entry["rolled_back_to"] == 2 and entry["version"] == 4 and newest(paths).sha256 == promoted[1][1]
    assert live(paths)["round"] == 1
    entry = rollback(paths.root)  # and further back
    assert entry["rolled_back_to"] == 1 and newest(paths).sha256 == promoted[0][1]
    with pytest.raises(ValueError, match="first promoted"):
        rollback(paths.root)
    result = subprocess.run([sys.executable, "-m", "armfarm.cli.main", "farm", "rollback", str(paths.root), "--to", "3"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "rolled back to v3" in result.stdout
    assert newest(paths).sha256 == promoted[2][1] and live(paths)["round"] == 2
    with pytest.raises(ValueError, match="version 4 was never live"):  # a rollback's copy is not a target
        rollback(paths.root, to=4)
