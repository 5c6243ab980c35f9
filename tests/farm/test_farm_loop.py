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


def test_a_shielded_farm_refits_the_shield_each_round_and_gates_on_cost(tmp_path):
    from armfarm.data import EpisodeStore
    from armfarm.shield import Shield

    farm = tmp_path / "farm"
    make_farm(farm, robots=2)  # the fast maze settings, then the damage task and the shield on top
    from armfarm.farm.config import init

    init(farm, "armfarm/ReacherFragile-v0", robots=2, algo="bc", overwrite=True, overrides={
        "default_behavior": "random", "episodes_per_round": "12", "gradient_steps": "500", "steps_per_call": "250",
        "checkpoint_every": "500", "algo_config.hidden": "32,32", "eval_episodes": "4", "policy_poll_s": "0.5",
        "shield": "true", "shield_steps": "300", "cost_budget": "2.0", "backoff_s": "0.2", "backoff_max_s": "1.0",
        "port": str(__import__("farmlib").free_port())})
    code, out, err = finish(start(farm, "--rounds", "2"))
    assert code == 0, err[-3000:]
    paths = FarmPaths(farm)
    newest = max(paths.shields.glob("round_*"))  # the learner may have trained a round past the last decided
    assert paths.shield.is_symlink() and paths.shield.resolve() == newest.resolve() and newest.name >= "round_0001"
    assert Shield.load(paths.shield).config.support.enabled  # refitted: all four layers
    records = [json.loads((paths.round_file(i)).read_text()) for i in (0, 1)]
    for r in records:
        assert r["shield"] == str(paths.shields / f"round_{r['round']:04d}")
        evaluation = r["candidate"]["eval"]
        assert {"cost_mean", "costs", "interventions_mean"} <= set(evaluation) and r["evaluated_behind_shield"]
        if evaluation["cost_mean"] > 2.0:
            assert not r["promoted"] and "budget 2" in r["reason"]
    store = EpisodeStore(paths.store)
    info = store.info()
    assert info["costs"]["max"] > 0  # the random default behaviour breaks things, and the store records it
    assert info["safety"]["interventions"] > 0  # robots ran behind the refitted shield, which acted
    check_nothing_lost(farm)


PIXEL_FARMS = {
    # point at a dot: continuous actions; random scores about -1.0, the blind a = 0 about -0.75
    "DotPoint-td3bc": ("armfarm/DotPoint-v0", "td3bc", -0.7, {
        "algo_config.hidden": "64,64", "algo_config.actor_lr": "1e-3", "algo_config.critic_lr": "1e-3",
        "algo_config.encoder_lr": "1e-3"}),
    # name the dot's quadrant: Discrete(4); random scores about 0.25
    "QuadrantDot-dqn": ("armfarm/QuadrantDot-v0", "dqn", 0.3, {"algo_config.hidden": "64", "algo_config.lr": "1e-3"}),
}


@pytest.mark.parametrize("case", PIXEL_FARMS)
def test_a_farm_learns_from_pixels_and_its_robots_run_the_image_policy(case, tmp_path):
    """One-step pixel tasks: robots store uint8 images, the learner trains through its encoder, the
    candidate beats the random default on the gate and is published, and the robots then act with the
    image policy, run by NumPy."""
    import numpy as np
    from farmlib import FAST, free_port

    from armfarm.farm.config import init
    from armfarm.fleet.registry import Registry

    env_id, algo, beats, algo_settings = PIXEL_FARMS[case]
    farm = tmp_path / "farm"
    settings = {**{k: FAST[k] for k in ("policy_poll_s", "backoff_s", "backoff_max_s", "steps_per_call")},
                "port": str(free_port()), "episodes_per_round": "300", "gradient_steps": "1000",
                "control_hz": "25",  # one-step episodes: paced, so the uploads keep up and the rounds see v1's
                "checkpoint_every": "500", "eval_episodes": "50", "algo_config.batch_size": "64",
                "algo_config.encoder_channels": "8", **algo_settings}
    init(farm, env_id, robots=2, algo=algo, overrides=settings)
    code, out, err = finish(start(farm, "--rounds", "2"))
    assert code == 0, err[-3000:]
    status = json.loads(subprocess.run([sys.executable, "-m", "armfarm.cli.main", "farm", "status", str(farm),
                                        "--json"], capture_output=True, text=True, check=True).stdout)
    first = status["rounds"][0]
    assert first["promoted"] and "default behaviour (random)" in first["reason"], first["reason"]
    assert first["candidate"]["eval"]["return_mean"] > beats

    store = check_nothing_lost(farm)
    episode = store.read_episode(store.snapshot()[0].episode_id)
    assert episode.observations.dtype == np.uint8 and episode.observations.shape[1:] == (16, 16, 1)
    assert 1 in {p.version for p in Registry(store).policies()}
    versions = {r.policy_id.split(":")[0] for r in store.snapshot()}
    assert "v1" in versions, versions  # the robots collected with the image policy once it was live
