"""armfarm.algos.common: dataset statistics, configs, the fused K-step train function, checkpoints."""

import dataclasses
import json
import warnings

import jax
import numpy as np
import pytest
from algo_testlib import TINY_CONFIGS, ArrayDataset, random_dataset

from armfarm.algos import (
    CheckpointError,
    CheckpointNotFoundError,
    DatasetStats,
    config_from_dict,
    config_to_dict,
    get_algorithm,
    load_checkpoint,
    make_train_fn,
    save_checkpoint,
)
from armfarm.algos.bc import BCConfig
from armfarm.algos.iql import IQLConfig
from armfarm.algos.td3bc import TD3BCConfig


def test_dataset_stats_from_dataset():
    ds = random_dataset(n=1000, obs_dim=3, act_dim=2)
    stats = DatasetStats.from_dataset(ds)
    assert (stats.obs_dim, stats.act_dim) == (3, 2)
    np.testing.assert_allclose(stats.obs_mean, ds.observations.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.obs_std, ds.observations.std(0) + 1e-3, rtol=1e-5)
    np.testing.assert_array_equal(stats.action_low, [-1, -1])  # data inside [-1, 1] -> [-1, 1]
    assert stats.return_range == pytest.approx(ds.episode_returns.max() - ds.episode_returns.min())
    # constant features never give a zero std
    const = ArrayDataset(np.ones((10, 2), np.float32), np.zeros((10, 1), np.float32), *[None] * 3)
    s = DatasetStats.from_dataset(const)
    assert np.all(s.obs_std > 0) and s.return_range is None


def test_action_bounds_resolution():
    ds = random_dataset(n=200, act_dim=2, scale=3.0)
    s = DatasetStats.from_dataset(ds, action_low=-4, action_high=[4, 5])
    np.testing.assert_array_equal(s.action_high, [4, 5])
    with pytest.warns(UserWarning, match="action bounds"):
        s = DatasetStats.from_dataset(ds)
    np.testing.assert_allclose(s.action_low, ds.actions.min(0))
    ds.action_low, ds.action_high = np.array([-9, -9]), np.array([9, 9])  # attributes are used
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(DatasetStats.from_dataset(ds).action_high, [9, 9])
    with pytest.raises(ValueError, match="both"):
        DatasetStats.from_dataset(ds, action_low=-1)


def test_stats_json_round_trip_and_validation():
    s = DatasetStats.from_dataset(random_dataset(), action_low=-2, action_high=2)
    t = DatasetStats.from_dict(json.loads(json.dumps(s.to_dict())))
    for f in dataclasses.fields(DatasetStats):
        np.testing.assert_array_equal(getattr(t, f.name), getattr(s, f.name))
    with pytest.raises(ValueError, match="obs_std"):
        DatasetStats(2, 1, [0, 0], [1, 0], [-1], [1])


def test_configs_are_frozen_hashable_and_validated():
    c = IQLConfig(hidden=[64, 64])
    assert c.hidden == (64, 64) and hash(c) == hash(IQLConfig(hidden=(64, 64)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.expectile = 0.9
    assert config_from_dict(IQLConfig, json.loads(json.dumps(config_to_dict(c)))) == c
    with pytest.raises(ValueError, match="expectile"):
        IQLConfig(expectile=1.0)
    with pytest.raises(ValueError, match="hidden"):
        BCConfig(hidden=())
    with pytest.raises(ValueError, match="IQLConfig has no setting"):
        config_from_dict(IQLConfig, {"expectle": 0.7})
    with pytest.raises(TypeError, match="TD3BCConfig"):
        make_train_fn("td3bc", BCConfig())


def test_paper_defaults():
    assert (TD3BCConfig().alpha, TD3BCConfig().policy_noise, TD3BCConfig().noise_clip, TD3BCConfig().policy_freq) == (
        2.5, 0.2, 0.5, 2)
    iql = IQLConfig()
    assert (iql.expectile, iql.temperature, iql.exp_adv_max, iql.actor_lr) == (0.7, 3.0, 100.0, 3e-4)
    cql = get_algorithm("cql").config_cls()
    assert (cql.cql_alpha, cql.num_samples, cql.actor_lr, cql.critic_lr, cql.target_action_gap) == (5.0, 10, 1e-4, 3e-4, 10.0)
    for name in ("bc", "cql", "iql", "td3bc"):
        cfg = get_algorithm(name).config_cls()
        assert cfg.hidden == (256, 256) and cfg.batch_size == 256


def test_scan_of_k_updates_equals_k_single_updates():
    algo, config = get_algorithm("td3bc"), TINY_CONFIGS["td3bc"]
    ds = random_dataset()
    stats = DatasetStats.from_dataset(ds)
    batches = ds.sample_stacked(np.random.default_rng(0), 8, 32)
    fused, fused_metrics = make_train_fn(algo, config)(algo.init(config, stats, 0), batches)
    update = jax.jit(lambda s, b: algo.update(config, s, b))
    state, per_step = algo.init(config, stats, 0), []
    for k in range(8):
        state, m = update(state, {key: v[k] for key, v in batches.items()})
        per_step.append(m)
    assert int(state["step"]) == int(fused["step"]) == 8
    for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for k, v in fused_metrics.items():  # metrics are the mean over the K steps
        assert float(v) == pytest.approx(np.mean([float(m[k]) for m in per_step]), rel=1e-4, abs=1e-5)


def test_batches_of_other_dtypes_and_extra_keys_are_accepted():
    algo, config = get_algorithm("bc"), TINY_CONFIGS["bc"]
    ds = random_dataset()
    stats = DatasetStats.from_dataset(ds)
    b = ds.sample_stacked(np.random.default_rng(0), 8, 32)
    b64 = {k: v.astype(np.float64) for k, v in b.items()}
    b64["terminals"] = b["terminals"].astype(bool)
    b64["timeouts"] = np.zeros((8, 32), bool)
    fn = make_train_fn(algo, config)
    s1, _ = fn(algo.init(config, stats, 0), b)
    s2, _ = fn(algo.init(config, stats, 0), b64)
    for a, c in zip(jax.tree.leaves(s1), jax.tree.leaves(s2), strict=True):
        np.testing.assert_array_equal(a, c)


def _saved(tmp_path, name="bc"):
    algo, config = get_algorithm(name), TINY_CONFIGS[name]
    stats = DatasetStats.from_dataset(random_dataset())
    state = algo.init(config, stats, 0)
    save_checkpoint(tmp_path, name, config, state, stats, {"a": np.float32(1.5), "b": [1, 2]})
    return algo, config, stats, state


def test_checkpoint_layout_and_errors(tmp_path):
    algo, config, stats, state = _saved(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["format"] == "armfarm-checkpoint" and meta["format_version"] == 1 and meta["algo"] == "bc"
    assert meta["config"]["hidden"] == [32, 32] and meta["extra"] == {"a": 1.5, "b": [1, 2]}
    assert (tmp_path / "policy.npz").exists() and (tmp_path / meta["state_file"]).exists()
    with np.load(tmp_path / meta["state_file"], allow_pickle=False) as z:
        assert "['actor']['params'][0]['w']" in z.files and "['key']" in z.files and "['step']" in z.files

    # saving again replaces the state file (one state file per checkpoint directory)
    save_checkpoint(tmp_path, "bc", config, state, stats)
    assert len(list(tmp_path.glob("state-*.npz"))) == 1

    with pytest.raises(CheckpointNotFoundError):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="meta.json"):
        load_checkpoint(tmp_path / "empty")

    meta = json.loads((tmp_path / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "format_version": 2}))
    with pytest.raises(CheckpointError, match="format version 2"):
        load_checkpoint(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "algo": "ppo"}))
    with pytest.raises(CheckpointError, match="unknown algorithm 'ppo'"):
        load_checkpoint(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "config": {**meta["config"], "hidden": [64, 64]}}))
    with pytest.raises(CheckpointError, match=r"is float32\[32\], expected float32\[64\]"):
        load_checkpoint(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / meta["state_file"]).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable state"):
        load_checkpoint(tmp_path)
    (tmp_path / meta["state_file"]).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path)


def test_checkpoint_extra_must_be_json(tmp_path):
    algo, config = get_algorithm("bc"), TINY_CONFIGS["bc"]
    stats = DatasetStats.from_dataset(random_dataset())
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path, "bc", config, algo.init(config, stats, 0), stats, {"f": object()})
    with pytest.raises(TypeError, match="BCConfig"):
        save_checkpoint(tmp_path, "bc", TINY_CONFIGS["iql"], algo.init(config, stats, 0), stats)


def test_checkpoint_carries_obs_keys_into_policy(tmp_path):
    algo, config = get_algorithm("bc"), TINY_CONFIGS["bc"]
    ds = random_dataset(obs_dim=3)
    ds.obs_keys = ["pos", "vel"]
    stats = DatasetStats.from_dataset(ds)
    assert stats.obs_keys == ("pos", "vel")
    save_checkpoint(tmp_path, "bc", config, algo.init(config, stats, 0), stats)
    from armfarm.policy import NumpyPolicy

    p = NumpyPolicy.load(tmp_path / "policy.npz")
    assert p.obs_keys == ["pos", "vel"]
    np.testing.assert_allclose(p({"pos": [1.0, 2.0], "vel": [3.0]}), p(np.array([1.0, 2.0, 3.0])), rtol=1e-6)


def test_stats_from_dict_observations_and_from_a_sampler():
    rng = np.random.default_rng(0)
    obs = {"vel": rng.normal(size=(300, 1)), "pos": rng.normal(size=(300, 2)) + 5}
    ds = ArrayDataset(obs, rng.uniform(-1, 1, (300, 2)), None, None, None)
    s = DatasetStats.from_dataset(ds)
    assert s.obs_keys == ("pos", "vel") and s.obs_dim == 3
    np.testing.assert_allclose(s.obs_mean[:2], obs["pos"].mean(0), rtol=1e-5)

    class Sampler:  # no in-memory arrays, only sampling (like a memory-mapped sampler)
        size = 1000
        spec = type("Spec", (), {"action": type("A", (), {"low": [-2.0], "high": [2.0]})()})()

        def sample(self, rng, n):
            return {"observations": rng.normal(size=(n, 4)) + 1, "actions": rng.uniform(-2, 2, (n, 1))}

    s = DatasetStats.from_dataset(Sampler())
    assert s.obs_dim == 4 and abs(s.obs_mean.mean() - 1) < 0.1
    np.testing.assert_array_equal(s.action_high, [2.0])  # bounds from the store spec
