"""The farm on a real two-node Ray cluster: robots, learner and evaluator as Ray actors, evaluation
episodes as parallel Ray tasks, one round decided with the same records as on local processes."""

from __future__ import annotations

import json

import pytest
from farmlib import check_nothing_lost, finish, make_farm, start

from armfarm.farm.state import FarmPaths, read_json, rounds

RAY_SMALL = {"robot_cpus": "0.25", "learner_cpus": "0.5", "evaluator_cpus": "0.25", "eval_tasks": "2"}


@pytest.mark.slow
def test_the_farm_runs_a_round_on_ray(tmp_path, ray_address):
    farm = make_farm(tmp_path / "farm", robots=2, **RAY_SMALL)
    code, out, err = finish(start(farm, "--rounds", "1", "--ray", ray_address), timeout=420)
    assert code == 0, err[-3000:]
    paths = FarmPaths(farm)
    decided = [r for r in rounds(paths) if r.get("phase") == "decided"]
    assert decided and decided[0]["candidate"]["eval"]["episodes"] == 20  # 20 episodes, from 2 Ray tasks
    from armfarm.farm.config import load
    from armfarm.farm.evaluator import evaluate

    here = evaluate(load(farm), decided[0]["candidate"]["policy"])  # the same evaluation, here, in one process
    assert here.returns == decided[0]["candidate"]["eval"]["returns"]
    table = {c["name"]: c for c in read_json(paths.components, {})["components"]}
    assert set(table) == {"server", "learner", "evaluator", "robot-0", "robot-1"}
    assert all(c["restarts"] == 0 for c in table.values())
    check_nothing_lost(farm)
    assert "round 0" in out, json.dumps(decided[0])[:500]
    assert "ray" in (paths.root / "farm.toml").read_text()
