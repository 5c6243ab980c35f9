"""Minari export: readable by minari.load_dataset, and import(export(store)) == store."""

import gymnasium as gym
import numpy as np
import pytest
from episode_factory import assert_episodes_equal, make_episode

from armfarm.data import DataError, EpisodeStore, StoreSpec, check_store, export_minari, import_minari


@pytest.fixture(params=[False, True], ids=["vector", "dict"])
def store(tmp_path, request):
    rng = np.random.default_rng(0)
    env = gym.make("Hopper-v5")
    spec = StoreSpec.from_gymnasium(env.observation_space, env.action_space) if not request.param else None
    store = EpisodeStore(tmp_path / "store", create=True, spec=spec)
    store.write(
        [
            make_episode(
                rng,
                T=t,
                end=end,
                dict_obs=request.param,
                seed=seed,
                collector_id=f"arm-{t}",
                policy_id="iql",
                env_id="Hopper-v5",
            )
            for t, end, seed in [(6, "terminated", 3), (1, "truncated", None), (9, "none", 2**63 + 5)]
        ]
    )
    return store


def test_minari_reads_the_export(tmp_path, store, monkeypatch):
    import minari

    root = tmp_path / "minari"
    dest = export_minari(store.path, root / "armfarm" / "hopper-v0", dataset_id="armfarm/hopper-v0")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    dataset = minari.load_dataset("armfarm/hopper-v0")
    assert dest == root / "armfarm" / "hopper-v0"
    assert dataset.total_episodes == 3 and dataset.total_steps == 16
    for ours, theirs in zip(store.iter_episodes(), dataset.iterate_episodes(), strict=True):
        obs = theirs.observations
        if isinstance(obs, dict):
            assert sorted(obs) == sorted(ours.observations)
            for k in obs:
                np.testing.assert_array_equal(obs[k], ours.observations[k])
                assert obs[k].dtype == np.float32
        else:
            np.testing.assert_array_equal(obs, ours.observations)
        np.testing.assert_array_equal(theirs.actions, ours.actions)
        np.testing.assert_array_equal(theirs.rewards, ours.rewards)
        np.testing.assert_array_equal(theirs.terminations, ours.terminated)
        np.testing.assert_array_equal(theirs.truncations, ours.truncated)
    if not isinstance(store.spec.observation, dict):
        assert dataset.spec.env_spec.id == "Hopper-v5"
        np.testing.assert_array_equal(dataset.action_space.low, [-1, -1, -1])


def test_round_trip(tmp_path, store):
    dest = export_minari(store, tmp_path / "export-v2")
    report = import_minari(dest, tmp_path / "again")
    again = EpisodeStore(report.store_path)
    assert again.spec == store.spec
    assert [r.episode_id for r in again.records()] == [r.episode_id for r in store.records()]
    for a, b in zip(again.iter_episodes(), store.iter_episodes(), strict=True):
        assert_episodes_equal(a, b)
    assert check_store(again.path).ok


def test_export_errors(tmp_path, store):
    export_minari(store, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "main_data.hdf5").is_file()
    with pytest.raises(DataError, match="already holds"):
        export_minari(store, tmp_path / "out")
    with pytest.raises(DataError) as info:
        export_minari(store, tmp_path / "x", dataset_id="bad id!")
    assert info.value.field == "dataset_id"
    with pytest.raises(DataError, match="no episodes"):
        export_minari(EpisodeStore(tmp_path / "empty", create=True), tmp_path / "y")
    assert not (tmp_path / "x" / "data").exists() and not (tmp_path / "y" / "data").exists()
