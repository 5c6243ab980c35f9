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


@pytest.mark.slow
def test_the_learner_holds_a_gpu_only_when_it_asks_and_the_cluster_has_one(tmp_path):
    import ray
    from raylib import local_cluster

    from armfarm.farm.config import load
    from armfarm.farm.supervisor import ray_resources
    from armfarm.launch.ray_cluster import connect

    ray.shutdown()  # clusters of its own: one whose head declares a GPU, one without
    asks = load(make_farm(tmp_path / "asks", robots=1, learner_gpus="1"))
    default = load(make_farm(tmp_path / "default", robots=1))
    with local_cluster(nodes=1, cpus_per_node=2, head_gpus=1) as cluster:
        r = connect(cluster.address)
        learner = ray_resources(asks, r)("learner")
        assert learner["num_gpus"] == 1 and ray_resources(default, r)("learner")["num_gpus"] == 0

        @r.remote
        def granted() -> list:
            return r.get_runtime_context().get_accelerator_ids()["GPU"]

        assert r.get(granted.options(**learner).remote(), timeout=120) == ["0"]  # Ray hands the learner GPU 0
        r.shutdown()
    with local_cluster(nodes=1) as cluster:  # no GPU anywhere: the learner runs on CPU instead of never starting
        assert ray_resources(asks, connect(cluster.address))("learner")["num_gpus"] == 0
        ray.shutdown()
