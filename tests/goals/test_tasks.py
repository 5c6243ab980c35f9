"""OGBench point-maze data built locally, a goal-conditioned policy trained on it, and `armfarm eval
--tasks` reporting success per evaluation task."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from armfarm.cli.main import app
from armfarm.data import EpisodeStore
from armfarm.datasets import build_dataset
from armfarm.goals.tasks import ogbench_env_id, parse_tasks


def test_task_lists_parse_and_bad_ones_are_refused():
    assert parse_tasks("1-5", 5) == [1, 2, 3, 4, 5]
    assert parse_tasks("2, 4,2", 5) == [2, 4]
    with pytest.raises(ValueError, match="outside"):
        parse_tasks("0-2", 5)
    with pytest.raises(ValueError, match="not a task id"):
        parse_tasks("one", 5)
    assert ogbench_env_id("pointmaze-medium-navigate-v0") == "pointmaze-medium-v0"
    assert ogbench_env_id("pointmaze-large-v0") == "pointmaze-large-v0"


@pytest.mark.slow
def test_navigate_data_trains_a_policy_that_eval_tasks_scores(tmp_path):
    provenance = build_dataset("pointmaze-medium-navigate", tmp_path / "store", size=3000, seed=1)
    assert provenance["episodes"] == 3 and provenance["behavior"]["goal_arrivals"] > 0
    again = build_dataset("pointmaze-medium-navigate", tmp_path / "again", size=3000, seed=1)
    a, b = (list(EpisodeStore(tmp_path / s).iter_episodes()) for s in ("store", "again"))
    assert all(np.array_equal(x.observations, y.observations) for x, y in zip(a, b, strict=True)), \
        "a build is deterministic for a seed"
    assert again["behavior"] == provenance["behavior"]
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "gcbc", str(tmp_path / "store"), "--out", str(tmp_path / "run"),
                                  "--steps", "200", "--set", "hidden=32,32", "--set", "batch_size=64"])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["eval", str(tmp_path / "run"), "--env", "pointmaze-medium-navigate-v0",
                                 "--tasks", "1-2", "--episodes", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [t["task"] for t in report["tasks"]] == [1, 2] and [t["name"] for t in report["tasks"]] == ["task1", "task2"]
    assert 0.0 <= report["success_rate"] <= 1.0 and all(t["episodes"] == 1 for t in report["tasks"])
    bad = runner.invoke(app, ["eval", str(tmp_path / "run"), "--env", "pointmaze-medium-v0", "--tasks", "7"])
    assert bad.exit_code == 2 and "outside" in bad.output


@pytest.mark.slow
def test_cube_play_data_is_repeatable_and_its_tasks_evaluate(tmp_path):
    provenance = build_dataset("cube-single-play", tmp_path / "store", size=2000, seed=3)
    assert provenance["episodes"] == 2 and provenance["behavior"]["tasks_completed"] > 0, provenance
    build_dataset("cube-single-play", tmp_path / "again", size=2000, seed=3)
    a, b = (list(EpisodeStore(tmp_path / s).iter_episodes()) for s in ("store", "again"))
    assert all(np.array_equal(x.observations, y.observations) and np.array_equal(x.actions, y.actions)
               for x, y in zip(a, b, strict=True)), "a build is deterministic for a seed"
    assert a[0].observations.shape == (1001, 28)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "gcbc", str(tmp_path / "store"), "--out", str(tmp_path / "run"),
                                  "--steps", "50", "--set", "hidden=16", "--set", "batch_size=32"])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["eval", str(tmp_path / "run"), "--env", "cube-single-play-v0", "--tasks", "1",
                                 "--episodes", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tasks"][0]["episodes"] == 1
