"""The farm end to end: robots collect, rounds train and gate candidates, promotions reach the robots."""

import json
import subprocess
import sys

import pytest
from farmlib import assert_same_policy, check_nothing_lost, finish, make_farm, retrain_round, start

from armfarm.farm.state import FarmPaths

pytestmark = pytest.mark.slow


def test_two_robots_run_rounds_promote_and_episodes_name_their_version(tmp_path):
    farm = make_farm(tmp_path / "farm", robots=2)
    code, out, err = finish(start(farm, "--rounds", "3"))
    assert code == 0, err[-3000:]
    assert out.count("round ") >= 3 and "3 round(s) decided" in out

    status = json.loads(subprocess.run([sys.executable, "-m", "armfarm.cli.main", "farm", "status", str(farm),
                                        "--json"], capture_output=True, text=True, check=True).stdout)
    rounds = status["rounds"]
    assert [r["round"] for r in rounds[:3]] == [0, 1, 2]
    for r in rounds[:3]:
        assert {"round", "started_at", "finished_at", "episodes_used", "transitions_used", "candidate", "promoted",
                "policy_version", "reason"} <= set(r)
        assert set(r["candidate"]["eval"]) >= {"return_mean", "return_std", "ci_low", "ci_high"}
        assert r["candidate"]["eval"]["ci_low"] <= r["candidate"]["eval"]["return_mean"] <= r["candidate"]["eval"]["ci_high"]
        assert r["reason"].startswith("promoted" if r["promoted"] else "not promoted")
    assert any(r["promoted"] for r in rounds[:3]), [r["reason"] for r in rounds]
    # a round starts only after episodes_per_round new episodes, and uses everything stored then
    assert rounds[0]["episodes_used"] >= 30 and rounds[1]["episodes_used"] >= rounds[0]["episodes_used"] + 30
    assert status["policy_version"] is not None and status["running"] is False
    assert status["episodes"] >= rounds[2]["episodes_used"] and status["transitions"] > 0
    assert {c["name"] for c in status["components"]} == {"server", "learner", "evaluator"}
    assert [r["robot_id"] for r in status["robots"]] == ["robot-0", "robot-1"]
    assert all(r["episodes_acked"] > 0 and r["last_seen"] for r in status["robots"])

    # promotions never lower the live policy's measured return on the evaluation seeds
    live = None
    for r in rounds[:3]:
        if r["promoted"]:
            assert live is None or r["candidate"]["eval"]["return_mean"] > live
            live = r["candidate"]["eval"]["return_mean"]

    # every episode names the default behaviour or a published version that collected it
    store = check_nothing_lost(farm)
    from armfarm.fleet.registry import Registry

    published = {p.version for p in Registry(store).policies()}
    versions = {r.policy_id.split(":")[0] for r in store.snapshot()}
    assert "default" in versions
    assert versions - {"default"} <= {f"v{v}" for v in published}
    first = next(r for r in rounds if r["promoted"])
    if first["round"] < 2:  # robots kept collecting for at least one more round after it went live
        assert f"v{first['policy_version']}" in versions
    # the candidates trained on exactly the data their rounds name
    assert_same_policy(*retrain_round(farm, 1))


def test_a_second_run_on_one_farm_is_refused_naming_the_holder(tmp_path):
    farm = make_farm(tmp_path / "farm", robots=1)
    first = start(farm, "--minutes", "5")
    try:
        from farmlib import wait_for

        from armfarm.farm.state import holder

        wait_for(lambda: holder(FarmPaths(farm)) is not None, what="the first farm to take its lock")
        second = subprocess.run([sys.executable, "-m", "armfarm.cli.main", "farm", "run", str(farm), "--rounds", "1"],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert f"already running (pid {first.pid})" in second.stderr
    finally:
        first.terminate()  # SIGTERM: a graceful stop
        code, _, err = finish(first)
    assert code == 0, err[-2000:]
    check_nothing_lost(farm)
