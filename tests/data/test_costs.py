"""Costs in the data model (schema 2): stored per step, summed per episode, read as zero where a store or
file has none, refused when negative or non-finite, and carried unchanged by import, export and training."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from episode_factory import make_episode

from armfarm.data import (
    SCHEMA_VERSION,
    DataError,
    EpisodeStore,
    TransitionDataset,
    check_store,
    export_minari,
    import_minari,
    import_npz,
)
from armfarm.policy import NumpyPolicy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
V1_RETURN_MEAN = -0.708014921285212  # store_v1's mean return, as the release that wrote it reported


def costly_episode(rng, T=12, **meta):
    episode = make_episode(rng, T=T, **meta)
    episode.costs = (rng.uniform(size=T) < 0.3).astype(np.float32) * rng.uniform(0.5, 2.0, size=T).astype(np.float32)
    episode.interventions = (rng.uniform(size=T) < 0.2).astype(np.uint8) * 2
    return episode


def open_v1_store(tmp_path: Path) -> Path:
    """The store written by the release before costs existed (schema 1), unpacked into ``tmp_path``."""
    with tarfile.open(FIXTURES / "store_v1.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "store_v1"


def test_costs_round_trip_per_step_and_per_episode(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [costly_episode(rng, T=8 + i) for i in range(4)] + [make_episode(rng, T=5)]
    episodes[1].end_reason = "watchdog: cost budget 1.0 exceeded"
    store = EpisodeStore(tmp_path / "s", create=True)
    store.write(episodes)
    for ep in episodes:
        back = store.read_episode(ep.episode_id)
        np.testing.assert_array_equal(back.step_costs, ep.step_costs)
        np.testing.assert_array_equal(back.step_interventions, ep.step_interventions)
        assert back.end_reason == ep.end_reason
        record = store.record(ep.episode_id)
        assert record.cost_return == pytest.approx(ep.cost_return) and record.interventions == ep.intervention_count
    costs = np.array([ep.cost_return for ep in episodes])
    info = store.info()
    assert info["costs"]["mean"] == pytest.approx(costs.mean()) and info["costs"]["max"] == pytest.approx(costs.max())
    assert info["safety"]["episodes_with_cost"] == int((costs > 0).sum())
    assert info["safety"]["interventions"] == sum(ep.intervention_count for ep in episodes)
    assert info["safety"]["end_reasons"] == {"watchdog: cost budget 1.0 exceeded": 1}
    data = TransitionDataset.from_store(store)
    np.testing.assert_allclose(np.sort(data.episode_costs), np.sort(costs), rtol=1e-6)
    assert data.costs.sum() == pytest.approx(costs.sum(), rel=1e-5)
    assert check_store(store.path).ok


@pytest.mark.parametrize(
    ("costs", "message"),
    [([0.0, -1.0, 0.0], "negative at step 1"), ([0.0, np.nan, 0.0], "NaN"), ([0.0, np.inf, 0.0], "NaN or inf"),
     ([0.0, 1.0], "rows")],
)
def test_bad_costs_are_refused_with_the_field_named(tmp_path, costs, message):
    store = EpisodeStore(tmp_path / "s", create=True)
    store.write([make_episode(np.random.default_rng(1), T=3)])
    episode = make_episode(np.random.default_rng(2), T=3)
    episode.costs = np.asarray(costs, np.float32)
    with pytest.raises(DataError, match=message) as raised:
        store.write([episode])
    assert raised.value.field == "costs" and store.num_episodes == 1


def test_a_store_written_before_costs_opens_migrates_reads_zero_cost_and_trains(tmp_path):
    path = open_v1_store(tmp_path)
    assert json.loads((path / "store.json").read_text())["schema_version"] == 1
    store = EpisodeStore(path)  # opening migrates it in place
    assert json.loads((path / "store.json").read_text())["schema_version"] == SCHEMA_VERSION
    info = store.info()
    assert info["schema_version"] == SCHEMA_VERSION and info["episodes"] == 6
    assert info["returns"]["mean"] == pytest.approx(V1_RETURN_MEAN)  # what the old release's info() said
    assert all(r.cost_return == 0 and r.interventions == 0 and r.end_reason == "" for r in store.records())
    episode = store.read_episode("ep-0")
    assert not episode.step_costs.any() and episode.step_costs.shape == (episode.length,)
    # new episodes with costs go into new shards next to the old ones; both read back
    new = costly_episode(np.random.default_rng(3), T=9, episode_id="new")
    new.observations, new.actions = np.asarray(new.observations)[:, :3], np.asarray(new.actions)[:, :1] * 2
    store.write([new])
    data = TransitionDataset.from_store(store)
    assert data.size == sum(r.length for r in store.records())
    assert data.costs.sum() == pytest.approx(new.cost_return, rel=1e-6) and new.cost_return > 0
    assert check_store(path).ok
    assert EpisodeStore(path).info()["episodes"] == 7  # opening again is a no-op
    from armfarm.train import train

    result = train("bc", path, tmp_path / "run", steps=4, steps_per_call=2, config_overrides={"hidden": (8,)})
    assert result["steps"] == 4


def test_a_policy_written_before_costs_still_loads_and_acts():
    policy = NumpyPolicy.load(FIXTURES / "policy_v1_bc.npz")
    action = policy(np.zeros(3, np.float32))
    assert action.shape == (1,) and np.all(np.abs(action) <= 2.0)


def test_npz_import_reads_the_dsrl_costs_array(tmp_path):
    rng = np.random.default_rng(4)
    n = 40
    timeouts = np.zeros(n, bool)
    timeouts[19] = True
    costs = (rng.uniform(size=n) < 0.25).astype(np.float32)
    arrays = dict(observations=rng.normal(size=(n, 3)).astype(np.float32), actions=rng.uniform(-1, 1, (n, 2)),
                  rewards=rng.normal(size=n), terminals=np.zeros(n, bool), timeouts=timeouts,
                  next_observations=rng.normal(size=(n, 3)).astype(np.float32), costs=costs)
    arrays["next_observations"][:-1] = arrays["observations"][1:]
    np.savez(tmp_path / "dsrl.npz", **arrays)
    import_npz(tmp_path / "dsrl.npz", tmp_path / "s", env_id="Point-v0")
    data = TransitionDataset.from_store(tmp_path / "s")
    np.testing.assert_array_equal(data.costs, costs)
    bad = {**arrays, "costs": -costs}
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(DataError, match="negative") as raised:
        import_npz(tmp_path / "bad.npz", tmp_path / "s2", env_id="Point-v0")
    assert raised.value.field == "costs" and not (tmp_path / "s2").exists()


def test_minari_export_and_import_keep_costs(tmp_path):
    rng = np.random.default_rng(5)
    store = EpisodeStore(tmp_path / "s", create=True)
    episodes = [costly_episode(rng, T=6 + i, env_id="") for i in range(3)] + [make_episode(rng, T=4, env_id="")]
    store.write(episodes)
    export_minari(store, tmp_path / "export-v0")
    import_minari(tmp_path / "export-v0", tmp_path / "back")
    back = EpisodeStore(tmp_path / "back")
    for ep in episodes:
        np.testing.assert_array_equal(back.read_episode(ep.episode_id).step_costs, ep.step_costs)


def test_episodes_without_costs_and_with_zero_costs_are_stored_alike(tmp_path):
    rng = np.random.default_rng(6)
    plain = make_episode(rng, T=5, episode_id="plain")
    zeros = make_episode(np.random.default_rng(6), T=5, episode_id="zeros")
    zeros.costs = np.zeros(5, np.float32)
    store = EpisodeStore(tmp_path / "s", create=True)
    store.write([plain, zeros])
    assert store.record("plain").cost_return == store.record("zeros").cost_return == 0.0
    np.testing.assert_array_equal(store.read_episode("zeros").step_costs, store.read_episode("plain").step_costs)
