"""TransitionDataset and MemmapSampler."""

import numpy as np
import pytest
from episode_factory import make_episode

from armfarm.data import DataError, EpisodeStore, MemmapSampler, TransitionDataset
from armfarm.data import shards as shards_module

KEYS = ["observations", "actions", "rewards", "next_observations", "terminals"]


@pytest.fixture
def episodes():
    rng = np.random.default_rng(0)
    return [
        make_episode(rng, T=t, end=end)
        for t, end in [(5, "terminated"), (3, "truncated"), (1, "none"), (4, "terminated")]
    ]


@pytest.fixture
def store(tmp_path, episodes):
    store = EpisodeStore(tmp_path / "s", create=True)
    store.write(episodes[:2])
    store.write(episodes[2:])
    return store


def test_arrays_match_episodes(store, episodes):
    ds = TransitionDataset.from_store(store.path)
    assert ds.size == 13 and ds.obs_dim == 11 and ds.act_dim == 3 and ds.obs_keys is None
    np.testing.assert_array_equal(ds.episode_starts, [0, 5, 8, 9])
    np.testing.assert_allclose(ds.episode_returns, [ep.episode_return for ep in episodes], rtol=1e-6)
    for ep, start in zip(episodes, ds.episode_starts, strict=True):
        T = ep.length
        np.testing.assert_array_equal(ds.observations[start : start + T], ep.observations[:-1])
        np.testing.assert_array_equal(ds.next_observations[start : start + T], ep.observations[1:])
        np.testing.assert_array_equal(ds.actions[start : start + T], ep.actions)
        np.testing.assert_array_equal(ds.rewards[start : start + T], ep.rewards)
        np.testing.assert_array_equal(ds.terminals[start : start + T], ep.terminated)
        np.testing.assert_array_equal(ds.timeouts[start : start + T], ep.truncated)
    for a in (ds.observations, ds.actions, ds.rewards, ds.next_observations, ds.terminals, ds.timeouts):
        assert a.dtype == np.float32 and a.flags.c_contiguous
    assert ds.terminals.sum() == 2 and ds.timeouts.sum() == 1


def test_dict_observations_flatten_in_sorted_order(tmp_path):
    rng = np.random.default_rng(0)
    store = EpisodeStore(tmp_path / "s", create=True)
    eps = [make_episode(rng, T=4, dict_obs=True), make_episode(rng, T=2, dict_obs=True)]
    store.write(eps)
    ds = TransitionDataset.from_store(store)
    assert ds.obs_keys == ["achieved_goal", "desired_goal", "observation"] and ds.obs_dim == 17
    o = eps[0].observations
    np.testing.assert_array_equal(
        ds.observations[:4], np.concatenate([o["achieved_goal"], o["desired_goal"], o["observation"]], 1)[:-1]
    )
    raw = TransitionDataset.from_store(store, flatten=False)
    np.testing.assert_array_equal(raw.next_observations["desired_goal"][:4], o["desired_goal"][1:])
    batch = raw.sample(np.random.default_rng(0), 5)
    assert batch["observations"]["observation"].shape == (5, 11)


def test_images_flatten_to_float32(tmp_path):
    from armfarm.data import Episode

    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    store = EpisodeStore(tmp_path / "s", create=True)
    store.write(
        [Episode(obs, np.zeros((3, 2), np.float32), np.zeros(3, np.float32), [False] * 3, [False] * 3)]
    )
    flat = TransitionDataset.from_store(store)
    np.testing.assert_array_equal(flat.observations, obs[:-1].reshape(3, -1).astype(np.float32))
    raw = TransitionDataset.from_store(store, flatten=False)
    assert raw.observations.dtype == np.uint8 and raw.observations.shape == (3, 6, 6, 3)


def test_sampling_is_deterministic(store):
    ds = TransitionDataset.from_store(store)
    a, b = ds.sample(np.random.default_rng(7), 32), ds.sample(np.random.default_rng(7), 32)
    assert sorted(a) == sorted(KEYS)
    for k in KEYS:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].dtype == np.float32 and len(a[k]) == 32
    stacked = ds.sample_stacked(np.random.default_rng(7), 4, 8)
    again = ds.sample_stacked(np.random.default_rng(7), 4, 8)
    assert stacked["observations"].shape == (4, 8, 11) and stacked["rewards"].shape == (4, 8)
    for k in KEYS:
        np.testing.assert_array_equal(stacked[k], again[k])
    np.testing.assert_array_equal(stacked["actions"].reshape(32, 3), a["actions"])


def test_memmap_sampler_matches_dataset(store, tmp_path, monkeypatch):
    ds = TransitionDataset.from_store(store)
    sampler = MemmapSampler.from_store(store.path, max_open_shards=1)
    assert (sampler.size, sampler.obs_dim, sampler.act_dim) == (ds.size, ds.obs_dim, ds.act_dim)
    for seed in range(3):
        a = sampler.sample_stacked(np.random.default_rng(seed), 3, 50)
        b = ds.sample_stacked(np.random.default_rng(seed), 3, 50)
        for k in KEYS:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    sampler.close()
    monkeypatch.setattr(shards_module, "TARGET_SHARD_BYTES", 500)
    rng = np.random.default_rng(1)
    many = EpisodeStore(tmp_path / "many", create=True)
    many.write([make_episode(rng, T=t, dict_obs=True) for t in (3, 9, 4, 12, 1, 6)])
    assert len({r.shard for r in many.records()}) > 3
    ds, sampler = TransitionDataset.from_store(many), MemmapSampler.from_store(many, max_open_shards=2)
    a, b = sampler.sample(np.random.default_rng(0), 200), ds.sample(np.random.default_rng(0), 200)
    for k in KEYS:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_from_snapshot_records(store, episodes):
    snapshot = store.snapshot()
    store.write([make_episode(np.random.default_rng(5), T=50)])
    assert TransitionDataset.from_store(store, records=snapshot).size == 13
    assert MemmapSampler.from_store(store, records=snapshot).size == 13
    assert TransitionDataset.from_store(store).size == 63


def test_empty_store_is_an_error(tmp_path):
    store = EpisodeStore(tmp_path / "s", create=True)
    with pytest.raises(DataError, match="no episodes"):
        TransitionDataset.from_store(store)
    with pytest.raises(DataError, match="no episodes"):
        MemmapSampler.from_store(store)


def test_from_arrays():
    rng = np.random.default_rng(0)
    n = 10
    terminals = np.zeros(n)
    terminals[3] = 1
    timeouts = np.zeros(n)
    timeouts[6] = 1
    ds = TransitionDataset.from_arrays(
        rng.normal(size=(n, 4)),
        rng.normal(size=(n, 2)),
        np.ones(n),
        rng.normal(size=(n, 4)),
        terminals,
        timeouts,
    )
    np.testing.assert_array_equal(ds.episode_starts, [0, 4, 7])
    np.testing.assert_array_equal(ds.episode_returns, [4, 3, 3])
    assert ds.observations.dtype == np.float32 and ds.sample(rng, 3)["terminals"].dtype == np.float32
    with pytest.raises(DataError) as info:
        TransitionDataset.from_arrays(
            np.zeros((n, 4)), np.zeros((n - 1, 2)), np.ones(n), np.zeros((n, 4)), terminals
        )
    assert info.value.field == "actions"
    bad = np.zeros((n, 4))
    bad[2, 2] = np.inf
    with pytest.raises(DataError, match="NaN or inf") as info:
        TransitionDataset.from_arrays(np.zeros((n, 4)), np.zeros((n, 2)), np.ones(n), bad, terminals)
    assert info.value.field == "next_observations"
    with pytest.raises(DataError) as info:
        TransitionDataset.from_arrays(
            np.zeros((n, 4)),
            np.zeros((n, 2)),
            np.ones(n),
            np.zeros((n, 4)),
            terminals,
            episode_starts=[0, 5, 5],
        )
    assert info.value.field == "episode_starts"
