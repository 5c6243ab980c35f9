"""The farm survives its own faults: killed components, a killed process tree, a crash loop, a full disk.

Each test ends with the same checks: ``armfarm data check`` passes and every episode a robot saw
acknowledged is in the store exactly once (``check_nothing_lost``)."""

import os
import signal
import subprocess
import sys

import pytest
from farmlib import (
    assert_same_policy,
    check_nothing_lost,
    component_pid,
    decided,
    finish,
    kill_tree,
    make_farm,
    restarts,
    retrain_round,
    start,
    wait_for,
)

from armfarm.farm.state import FarmPaths, read_json

pytestmark = pytest.mark.slow
SLOW_TRAINING = {"gradient_steps": "6000", "checkpoint_every": "500", "algo_config.hidden": "256,256",
                 "episodes_per_round": "20"}


def learner_step(farm) -> int:
    state = read_json(FarmPaths(farm).learner, {}) or {}
    return state.get("step", 0) if state.get("phase") == "training" else 0


def test_a_killed_learner_restarts_and_finishes_its_round_from_the_checkpoint(tmp_path):
    farm = make_farm(tmp_path / "farm", robots=1, **SLOW_TRAINING)
    process = start(farm, "--rounds", "1")
    wait_for(lambda: 1000 <= learner_step(farm) <= 4000, what="the learner to be mid-round")
    os.kill(component_pid(farm, "learner"), signal.SIGKILL)
    code, _, err = finish(process)
    assert code == 0, err[-3000:]
    assert restarts(farm)["learner"] == 1
    log = (FarmPaths(farm).logs / "learner.log").read_text()
    assert log.count("round 0: training") == 2  # started, killed, started again on the same round
    # resumed from its checkpoint on the same data: exactly the policy of an uninterrupted round
    assert_same_policy(*retrain_round(farm, 0))
    check_nothing_lost(farm)


def test_killed_robots_and_server_restart_and_lose_nothing(tmp_path):
    farm = make_farm(tmp_path / "farm", robots=2, episodes_per_round="40")
    process = start(farm, "--rounds", "2")
    paths = FarmPaths(farm)
    for victim in ("robot-0", "server", "robot-1", "server", "robot-0"):
        wait_for(lambda v=victim: component_pid(farm, v) is not None, what=f"{victim} to run")
        wait_for(lambda: sum(1 for _ in paths.acks.glob("*.jsonl")) == 2, what="both robots to be acknowledged")
        pid = component_pid(farm, victim)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda v=victim, p=pid: component_pid(farm, v) not in (None, p), what=f"{victim} to restart")
    code, _, err = finish(process)
    assert code == 0, err[-3000:]
    counts = restarts(farm)
    assert counts["server"] == 2 and counts["robot-0"] == 2 and counts["robot-1"] == 1
    store = check_nothing_lost(farm)
    # the spools drained on the graceful stop: every recorded episode reached the store
    left = [p for r in ("robot-0", "robot-1") for p in (paths.spool(r) / "pending").glob("*.episode")]
    stored = {r.episode_id for r in store.snapshot()}
    assert all(p.name.split("-", 1)[1].removesuffix(".episode") not in stored for p in left)
    assert len(decided(farm)) == 2


def test_killing_the_whole_tree_resumes_without_redoing_a_finished_round(tmp_path):
    farm = make_farm(tmp_path / "farm", robots=1, **SLOW_TRAINING)
    process = start(farm, "--rounds", "5")
    wait_for(lambda: len(decided(farm)) == 1 and 1000 <= learner_step(farm) <= 4000,
             what="round 0 decided and round 1 mid-training", timeout=240)
    first = decided(farm)[0]
    kill_tree(process)

    code, out, err = finish(start(farm, "--rounds", "1"))
    assert code == 0, err[-3000:]
    records = decided(farm)
    assert len(records) == 2 and records[0] == first  # round 0 untouched, not redone
    assert "round 1:" in out and "round 0:" not in out
    assert_same_policy(*retrain_round(farm, 1))  # round 1 resumed from its checkpoint, same data
    if records[1]["promoted"]:
        assert records[1]["policy_version"] == (first["policy_version"] or 0) + 1  # versions carry on
    check_nothing_lost(farm)


def test_a_component_that_always_crashes_stops_the_farm_with_a_clear_error(tmp_path):
    farm = make_farm(tmp_path / "farm", robots=1, max_restarts=3, backoff_s=0.1, backoff_max_s=0.2)
    FarmPaths(farm).learner.mkdir(parents=True)  # state/learner.json is a directory: every write fails
    code, _, err = finish(start(farm, "--minutes", "5"))
    assert code == 1
    assert "learner died 3 times" in err and "IsADirectoryError" in err and "Traceback" not in err.split("log")[0]
    check_nothing_lost(farm)


@pytest.fixture
def small_disk(tmp_path, tmpfs):
    return tmpfs(tmp_path / "farm" / "store", "4m")


def test_a_full_store_disk_defers_uploads_to_the_spools_and_damages_nothing(tmp_path, small_disk):
    farm = make_farm(tmp_path / "farm", robots=2, episodes_per_round="100000")
    process = start(farm, "--minutes", "5")
    paths = FarmPaths(farm)

    def deferred() -> bool:
        beats = [read_json(paths.robot_state(r), {}) or {} for r in ("robot-0", "robot-1")]
        # refused by the full disk (503), not merely early uploads that found the server still starting
        return any("503" in (b.get("last_error") or "") and b.get("pending", 0) > 0 for b in beats)

    try:
        wait_for(deferred, what="uploads to be refused by the full disk", timeout=180)
        status = subprocess.run([sys.executable, "-m", "armfarm.cli.main", "farm", "status", str(farm)],
                                capture_output=True, text=True)
        assert "uploads deferred" in status.stdout
    finally:
        process.terminate()
        code, _, err = finish(process)
    assert code == 0, err[-3000:]
    store = check_nothing_lost(farm)  # nothing stored was damaged, every ack is there
    pending = sum(1 for r in ("robot-0", "robot-1") for _ in (paths.spool(r) / "pending").glob("*.episode"))
    assert pending > 0 and store.num_episodes > 0  # the rest waits in the spools
