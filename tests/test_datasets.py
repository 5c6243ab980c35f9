"""Dataset recipes: reproducible for a seed, with provenance in `data info`, through the library and the CLI."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from armfarm import datasets
from armfarm.cli.main import app
from armfarm.data import EpisodeStore, TransitionDataset
from armfarm.datasets import RECIPES, build_dataset, get_recipe

runner = CliRunner()
TINY_SAC = {"hidden": (16, 16), "batch_size": 32}


def _arrays(path):
    ds = TransitionDataset.from_store(path)
    return {k: getattr(ds, k) for k in ("observations", "actions", "rewards", "terminals", "timeouts")}


def _assert_same_data(a, b):
    xa, xb = _arrays(a), _arrays(b)
    for key in xa:
        np.testing.assert_array_equal(xa[key], xb[key], err_msg=key)
    ids = [sorted(r.episode_id for r in EpisodeStore(p).records()) for p in (a, b)]
    assert ids[0] == ids[1]


def test_recipe_names_follow_d4rl():
    for name in ("hopper-random", "hopper-medium", "hopper-medium-replay", "hopper-expert",
                 "hopper-medium-expert", "walker2d-random", "halfcheetah-medium", "pointmaze-umaze",
                 "pointmaze-medium", "pointmaze-large", "pointmaze-umaze-dense"):
        assert name in RECIPES
    assert get_recipe("pointmaze-large").env_id == "PointMaze_Large-v3"
    with pytest.raises(ValueError, match="unknown dataset"):
        get_recipe("hopper-mediocre")


def test_random_recipe_is_reproducible_and_exactly_sized(tmp_path):
    for name in ("a", "b"):
        build_dataset("hopper-random", tmp_path / name, size=700, seed=5)
    _assert_same_data(tmp_path / "a", tmp_path / "b")
    info = EpisodeStore(tmp_path / "a").info()
    assert info["transitions"] == 700
    recipe = info["provenance"]["recipe"]
    assert recipe["seed"] == 5 and recipe["transitions"] == 700 and recipe["armfarm_version"]
    assert recipe["behavior"]["type"] == "uniform-random"
    build_dataset("hopper-random", tmp_path / "c", size=700, seed=6)
    assert not np.array_equal(_arrays(tmp_path / "a")["actions"], _arrays(tmp_path / "c")["actions"])


def test_maze_recipe_resamples_goals_and_cuts_fixed_length_episodes(tmp_path):
    for name in ("a", "b"):
        build_dataset("pointmaze-umaze", tmp_path / name, size=1000, seed=1)
    _assert_same_data(tmp_path / "a", tmp_path / "b")
    store = EpisodeStore(tmp_path / "a")
    episodes = list(store.iter_episodes())
    assert [e.length for e in episodes] == [300, 300, 300, 100]
    assert all(e.truncated[-1] and not e.terminated.any() for e in episodes)
    goals = np.concatenate([e.observations["desired_goal"] for e in episodes])
    assert len(np.unique(goals, axis=0)) > 1, "a new goal is drawn when the old one is reached"
    # consecutive episodes continue one run: each starts where the previous ended
    np.testing.assert_array_equal(episodes[0].observations["observation"][-1], episodes[1].observations["observation"][0])
    behavior = store.provenance["recipe"]["behavior"]
    assert behavior["type"] == "maze2d-waypoint-pd" and behavior["action_noise_std"] == 0.5


def test_medium_and_medium_replay_share_one_sac_run_and_record_it(tmp_path):
    common = dict(seed=0, sac_steps=400, behavior_dir=tmp_path / "sac", sac_overrides=TINY_SAC)
    medium = build_dataset("hopper-medium", tmp_path / "medium", size=500, **common)
    replay = build_dataset("hopper-medium-replay", tmp_path / "replay", **common)
    assert medium["behavior"]["checkpoint_sha256"] == replay["behavior"]["checkpoint_sha256"]
    assert replay["transitions"] == 400  # the whole buffer of the 400-step run
    behavior = EpisodeStore(tmp_path / "medium").info()["provenance"]["recipe"]["behavior"]
    for key in ("checkpoint_sha256", "eval_return_mean", "seed", "env_steps", "target_return"):
        assert behavior[key] is not None, key
    assert behavior["target_return"] == pytest.approx(3234.3 / 3)
    # the same recipe and seed from scratch (a fresh SAC run) gives the same data
    again = dict(common, behavior_dir=tmp_path / "sac2")
    build_dataset("hopper-medium", tmp_path / "medium2", size=500, **again)
    _assert_same_data(tmp_path / "medium", tmp_path / "medium2")


def test_medium_expert_mixes_samples_of_both_sac_runs(tmp_path):
    """medium-expert: half its transitions from the medium run's policy, half from the expert run's, each
    run recorded with its stage (tiny budgets here; the expert run stops at its budget, not its target)."""
    summary = build_dataset("walker2d-medium-expert", tmp_path / "me", size=600, seed=0, sac_steps=300,
                            behavior_dir=tmp_path / "sac", sac_overrides=TINY_SAC)
    assert summary["transitions"] == 600
    stages = {b["stage"]: b for b in summary["behavior"]}
    assert set(stages) == {"medium", "expert"}
    assert stages["expert"]["target_return"] == pytest.approx(3 * stages["medium"]["target_return"])
    assert stages["medium"]["run_dir"] != stages["expert"]["run_dir"]
    store = EpisodeStore(tmp_path / "me")
    steps_by_policy = {}
    for rec in store.records():
        steps_by_policy[rec.policy_id.split("@")[0]] = steps_by_policy.get(rec.policy_id.split("@")[0], 0) + rec.length
    assert steps_by_policy == {"sac-medium": 300, "sac-expert": 300}
    assert {rec.env_id for rec in store.records()} == {"Walker2d-v5"}


@pytest.mark.parametrize("name", ["halfcheetah-random", "walker2d-random"])
def test_random_recipes_of_the_other_locomotion_tasks(tmp_path, name):
    summary = build_dataset(name, tmp_path / "s", size=300, seed=0)
    info = EpisodeStore(tmp_path / "s").info()
    assert summary["transitions"] == info["transitions"] == 300
    assert info["spaces"] is not None and set(info["envs"]) == {get_recipe(name).env_id}


def test_an_interrupted_build_resumes_its_behaviour_run(tmp_path, monkeypatch):
    """Killed while SAC trains, a rerun of the same command resumes SAC from its last checkpoint (into
    the store the first attempt left empty) and builds the same data as an uninterrupted build."""
    monkeypatch.setattr(datasets, "SAC_CHECKPOINT_EVERY", 100)
    common = dict(seed=0, sac_steps=400, size=500, sac_overrides=TINY_SAC)

    def crash(stage, step, total):
        if stage.startswith("SAC") and step >= 250:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_dataset("hopper-medium", tmp_path / "a", behavior_dir=tmp_path / "sac", on_progress=crash, **common)
    assert EpisodeStore(tmp_path / "a").num_episodes == 0
    build_dataset("hopper-medium", tmp_path / "a", behavior_dir=tmp_path / "sac", **common)
    summary = json.loads((tmp_path / "sac" / "summary.json").read_text())
    assert summary["resumed_from"].endswith("step_200") and summary["resumed_exact"] is True
    build_dataset("hopper-medium", tmp_path / "b", behavior_dir=tmp_path / "sac2", **common)
    _assert_same_data(tmp_path / "a", tmp_path / "b")


def test_build_refuses_a_non_empty_store(tmp_path):
    build_dataset("hopper-random", tmp_path / "s", size=50)
    with pytest.raises(FileExistsError):
        build_dataset("hopper-random", tmp_path / "s", size=50)


def test_build_rejects_bad_arguments_before_creating_anything(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a store")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        build_dataset("hopper-random", a_file, size=50)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        build_dataset("hopper-random", tmp_path / "s", size=50, seed=-1)
    with pytest.raises(ValueError, match="sac_steps must be >= 1"):
        build_dataset("hopper-medium", tmp_path / "s", sac_steps=0)
    assert a_file.read_text() == "not a store" and not (tmp_path / "s").exists()
    result = runner.invoke(app, ["datasets", "build", "hopper-random", str(a_file)])
    assert result.exit_code == 2 and "not a directory" in result.output


def test_cli_lists_and_builds_datasets_and_info_shows_provenance(tmp_path):
    result = runner.invoke(app, ["datasets", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["recipes"]}
    assert rows["hopper-random"]["size"] and rows["hopper-medium"]["build_time"]
    assert runner.invoke(app, ["datasets", "list"]).exit_code == 0
    store = tmp_path / "maze"
    result = runner.invoke(app, ["datasets", "build", "pointmaze-umaze-dense", str(store), "--steps", "350", "--seed", "2"])
    assert result.exit_code == 0, result.output
    info = json.loads(runner.invoke(app, ["data", "info", str(store), "--json"]).stdout)
    assert info["transitions"] == 350 and info["provenance"]["recipe"]["name"] == "pointmaze-umaze-dense"
    assert "recipe" in runner.invoke(app, ["data", "info", str(store)]).output
    result = runner.invoke(app, ["datasets", "build", "nope", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown dataset" in result.output
