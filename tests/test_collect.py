"""Parallel collectors: data independent of the worker count, metadata recorded, clear errors."""

import numpy as np
import pytest

from armfarm.collect import collect
from armfarm.data import EpisodeStore, check_store
from armfarm.envs.behavior import BehaviorSpec


def _by_seed(store):
    return {e.seed: e for e in store.iter_episodes()}


def test_parallel_collection_equals_serial_collection(tmp_path, hopper_store):
    serial = tmp_path / "serial"
    report = collect("Hopper-v5", serial, BehaviorSpec("random"), episodes=12, workers=1, seed=0)
    assert report.episodes == 12
    parallel, single = _by_seed(EpisodeStore(hopper_store)), _by_seed(EpisodeStore(serial))
    assert sorted(parallel) == sorted(single) == list(range(12))
    for seed, episode in single.items():
        np.testing.assert_array_equal(episode.actions, parallel[seed].actions)
        np.testing.assert_array_equal(episode.observations, parallel[seed].observations)
        assert episode.env_id == "Hopper-v5" and episode.policy_id == "random"
    assert {e.collector_id for e in parallel.values()} == {"collector-0", "collector-1"}
    assert check_store(hopper_store).ok


def test_noise_changes_a_scripted_behaviour(tmp_path):
    clean = collect("PointMaze_UMazeDense-v3", tmp_path / "a", BehaviorSpec("maze-expert"), episodes=1, seed=3)
    noisy = collect("PointMaze_UMazeDense-v3", tmp_path / "b", BehaviorSpec("maze-expert", noise=0.5),
                    episodes=1, seed=3)
    assert clean.transitions == noisy.transitions == 300
    a = next(EpisodeStore(tmp_path / "a").iter_episodes()).actions
    b = next(EpisodeStore(tmp_path / "b").iter_episodes()).actions
    assert np.abs(a - b).mean() > 0.1


def test_unknown_env_is_a_clear_error_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="NoSuchEnv-v0"):
        collect("NoSuchEnv-v0", tmp_path / "s", BehaviorSpec("random"), episodes=2)
    assert not (tmp_path / "s").exists()


def test_missing_policy_file_names_the_path(tmp_path):
    with pytest.raises(RuntimeError, match="nope.npz"):
        collect("Hopper-v5", tmp_path / "s", BehaviorSpec(str(tmp_path / "nope.npz")), episodes=1)


def test_a_trained_goal_conditioned_policy_can_be_collected_with(tmp_path):
    """Dict observations survive the trip store -> train -> policy.npz -> collector."""
    from armfarm.train import train

    store = tmp_path / "maze"
    collect("PointMaze_UMazeDense-v3", store, BehaviorSpec("maze-expert", noise=0.5), episodes=2, seed=0)
    train("bc", store, tmp_path / "run", steps=20, steps_per_call=10, config_overrides={"hidden": "16,16"})
    for source in (tmp_path / "run", tmp_path / "run" / "checkpoints" / "step_20"):
        out = tmp_path / f"again-{source.name}"
        report = collect("PointMaze_UMazeDense-v3", out, BehaviorSpec(str(source)), episodes=1, seed=5)
        assert report.episodes == 1
        assert next(EpisodeStore(out).iter_episodes()).policy_id.startswith("bc@")
