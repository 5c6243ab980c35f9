"""Helpers for farm tests: a fast farm (PointMaze, BC, a noisy expert as the default behaviour) and
the checks every fault test ends with."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from armfarm.data import EpisodeStore, TransitionDataset, check_store
from armfarm.farm.config import init
from armfarm.farm.state import FarmPaths, read_json, rounds

ENV = "PointMaze_UMazeDense-v3"
# BC denoises a maze expert drowned in action noise: a candidate that beats the default behaviour is
# learnable in seconds (measured: the noisy expert returns ~170 over 300 steps, BC on its data ~190-205).
# That gap is about one std of the paired differences, so these tests gate on 20 seeds at 60% confidence:
# they check the loop's mechanics; the gate's statistics have their own tests (test_gate.py).
FAST = {"default_behavior": "maze-expert", "default_noise": "3.0", "episodes_per_round": "30",
        "gradient_steps": "2000", "steps_per_call": "250", "checkpoint_every": "500",
        "algo_config.hidden": "64,64", "eval_episodes": "20", "confidence": "0.6", "policy_poll_s": "0.5",
        "backoff_s": "0.2", "backoff_max_s": "1.0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_farm(root: Path, robots: int = 2, **settings) -> Path:
    pairs = {**FAST, "port": str(free_port()), **{k: str(v) for k, v in settings.items()}}
    init(root, ENV, robots=robots, algo="bc", overrides=pairs)
    return root


def start(farm: Path, *args: str) -> subprocess.Popen:
    """``armfarm farm run FARM ARGS`` in its own process group (so a test can kill the whole tree)."""
    return subprocess.Popen([sys.executable, "-m", "armfarm.cli.main", "farm", "run", str(farm), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"the farm did not stop in {timeout}s:\n{err[-3000:]}") from None
    return process.returncode, out, err


def kill_tree(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    deadline = time.monotonic() + 30  # children die with their parent (PR_SET_PDEATHSIG)
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True).returncode != 0:
            return
        time.sleep(0.1)


def wait_for(condition, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def component_pid(farm: Path, name: str) -> int | None:
    table = read_json(FarmPaths(farm).components, {}) or {}
    for c in table.get("components", []):
        if c["name"] == name and c["alive"]:
            return c["pid"]
    return None


def restarts(farm: Path) -> dict[str, int]:
    table = read_json(FarmPaths(farm).components, {}) or {}
    return {c["name"]: c["restarts"] for c in table.get("components", [])}


def decided(farm: Path) -> list[dict]:
    return [r for r in rounds(FarmPaths(farm)) if r["phase"] == "decided"]


def acked_ids(farm: Path) -> list[str]:
    ids = []
    for log in FarmPaths(farm).acks.glob("*.jsonl"):
        ids += [json.loads(line)["episode_id"] for line in log.read_text().splitlines() if line.strip()]
    return ids


def check_nothing_lost(farm: Path) -> EpisodeStore:
    """The store checks clean and holds every episode a robot saw acknowledged, exactly once."""
    paths = FarmPaths(farm)
    report = check_store(paths.store)
    assert report.ok, report.problems
    store = EpisodeStore(paths.store)
    stored = [r.episode_id for r in store.snapshot()]
    assert len(stored) == len(set(stored))
    missing = set(acked_ids(farm)) - set(stored)
    assert not missing, f"{len(missing)} acknowledged episodes are not in the store"
    return store


def retrain_round(farm: Path, index: int):
    """Train round ``index``'s candidate again, uninterrupted, on the data its record names."""
    from armfarm.farm.config import load
    from armfarm.policy import NumpyPolicy
    from armfarm.train import train

    paths = FarmPaths(farm)
    config = load(farm)
    record = read_json(paths.round_file(index))
    store = EpisodeStore(paths.store)
    data = TransitionDataset.from_store(store, records=store.snapshot()[: record["episodes_used"]])
    out = farm.parent / f"retrain_{index}"
    train(config.algo, paths.store, out, steps=config.gradient_steps, seed=config.seed + index,
          steps_per_call=config.steps_per_call, checkpoint_every=config.checkpoint_every,
          config_overrides=config.algo_config, dataset=data, init_from=record["warm_start_from"], overwrite=True)
    return NumpyPolicy.load(paths.run_dir(index) / "policy.npz"), NumpyPolicy.load(out / "policy.npz")


def assert_same_policy(a, b) -> None:
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases, strict=True):
        np.testing.assert_array_equal(wa, wb)
