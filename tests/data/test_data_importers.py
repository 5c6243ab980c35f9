"""Importers: npz, D4RL HDF5 and Minari; every bad input leaves the store untouched."""

import json
import shutil
import warnings

import gymnasium as gym
import h5py
import numpy as np
import pytest
from episode_factory import make_episode

from armfarm.data import DataError, EpisodeStore, check_store, import_d4rl, import_minari, import_npz

# -- flat arrays (npz / D4RL) ---------------------------------------------------------------------

LENGTHS = (5, 4, 3)  # a terminal episode, a timeout episode, and a trailing segment with neither


def flat_arrays(seed=0, next_obs=True):
    rng = np.random.default_rng(seed)
    obs, next_o, terminals, timeouts = [], [], [], []
    for i, T in enumerate(LENGTHS):
        o = rng.normal(size=(T + 1, 11))
        obs.append(o[:-1])
        next_o.append(o[1:])
        terminals.append(np.arange(T) == T - 1 if i == 0 else np.zeros(T, bool))
        timeouts.append(np.arange(T) == T - 1 if i == 1 else np.zeros(T, bool))
    n = sum(LENGTHS)
    arrays = {
        "observations": np.concatenate(obs),
        "actions": rng.uniform(-1, 1, size=(n, 3)).astype(np.float32),
        "rewards": rng.normal(size=n),
        "terminals": np.concatenate(terminals),
        "timeouts": np.concatenate(timeouts),
    }
    if next_obs:
        arrays["next_observations"] = np.concatenate(next_o)
    return arrays


def save(path, arrays):
    if path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v)
    return path


IMPORTERS = {".npz": import_npz, ".hdf5": import_d4rl}


@pytest.fixture(params=[".npz", ".hdf5"])
def suffix(request):
    return request.param


def test_import_with_next_observations(tmp_path, suffix):
    arrays = flat_arrays()
    src = save(tmp_path / f"data{suffix}", arrays)
    report = IMPORTERS[suffix](src, tmp_path / "store", env_id="Hopper-v5")
    assert (report.episodes, report.transitions, report.dropped_transitions) == (3, 12, 0)
    store = EpisodeStore(report.store_path)
    episodes = list(store.iter_episodes())
    assert [ep.length for ep in episodes] == list(LENGTHS)
    assert [bool(ep.terminated[-1]) for ep in episodes] == [True, False, False]
    assert [bool(ep.truncated[-1]) for ep in episodes] == [False, True, True]
    np.testing.assert_array_equal(
        episodes[1].observations[:-1], arrays["observations"][5:9].astype(np.float32)
    )
    np.testing.assert_array_equal(
        episodes[1].observations[-1], arrays["next_observations"][8].astype(np.float32)
    )
    assert {ep.env_id for ep in episodes} == {"Hopper-v5"}
    (entry,) = store.provenance["imports"]
    assert entry["format"] == suffix.strip(".").replace("hdf5", "d4rl") and entry["source"] == str(
        src.resolve()
    )
    assert entry["sha256"] == report.sha256 and len(report.sha256) == 64 and "imported_at" in entry
    assert check_store(store.path).ok


def test_import_without_next_observations(tmp_path, suffix):
    arrays = flat_arrays(next_obs=False)
    report = IMPORTERS[suffix](save(tmp_path / f"data{suffix}", arrays), tmp_path / "store")
    assert (report.episodes, report.transitions, report.dropped_transitions) == (3, 10, 2)
    episodes = list(EpisodeStore(report.store_path).iter_episodes())
    assert [ep.length for ep in episodes] == [5, 3, 2]
    terminal = episodes[0]
    np.testing.assert_array_equal(
        terminal.observations[-1], terminal.observations[-2]
    )  # copied, never bootstrapped
    assert terminal.terminated[-1] and not terminal.truncated[-1]
    timeout = episodes[1]  # its last transition (unknown next observation) was dropped
    np.testing.assert_array_equal(timeout.observations, arrays["observations"][5:9].astype(np.float32))
    assert timeout.truncated[-1] and not timeout.terminated.any()


def test_next_observation_discontinuity_splits_episode(tmp_path):
    arrays = flat_arrays()
    arrays["next_observations"][1] += 1.0  # the data jumps inside the first episode
    report = import_npz(save(tmp_path / "d.npz", arrays), tmp_path / "store")
    episodes = list(EpisodeStore(report.store_path).iter_episodes())
    assert [ep.length for ep in episodes] == [2, 3, 4, 3]
    assert episodes[0].truncated[-1] and not episodes[0].terminated[-1]
    np.testing.assert_array_equal(
        episodes[0].observations[-1], arrays["next_observations"][1].astype(np.float32)
    )


def test_reimport_is_detected(tmp_path):
    src = save(tmp_path / "d.npz", flat_arrays())
    import_npz(src, tmp_path / "store")
    with pytest.raises(DataError, match="already in the store"):
        import_npz(src, tmp_path / "store")
    assert import_npz(src, tmp_path / "store", on_duplicate="skip").episodes == 0
    assert EpisodeStore(tmp_path / "store").num_episodes == 3


def _set(arrays, key, value):
    arrays = dict(arrays)
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    return arrays


def test_import_without_timeouts_finds_cuts_from_next_observations(tmp_path, suffix):
    """D4RL's v0 files have no timeouts; next_observations still shows where episodes were cut."""
    arrays = flat_arrays()
    src = save(tmp_path / f"v0{suffix}", {k: v for k, v in arrays.items() if k != "timeouts"})
    report = IMPORTERS[suffix](src, tmp_path / "store")
    episodes = list(EpisodeStore(report.store_path).iter_episodes())
    assert [ep.length for ep in episodes] == list(LENGTHS) and report.dropped_transitions == 0
    assert [bool(ep.truncated[-1]) for ep in episodes] == [False, True, True]


def _nan(arrays, key, row, value=np.nan):
    a = arrays[key].astype(np.float64).copy()
    a[row] = value
    return _set(arrays, key, a)


BASE = flat_arrays()
N = sum(LENGTHS)
BAD_FLAT = {
    "missing observations": (_set(BASE, "observations", None), "observations", "missing"),
    "missing actions": (_set(BASE, "actions", None), "actions", "missing"),
    "missing rewards": (_set(BASE, "rewards", None), "rewards", "missing"),
    "missing terminals": (_set(BASE, "terminals", None), "terminals", "missing"),
    "missing timeouts and next": (
        _set(_set(BASE, "timeouts", None), "next_observations", None),
        "timeouts",
        "missing",
    ),
    "short actions": (_set(BASE, "actions", BASE["actions"][:-1]), "actions", "rows"),
    "long rewards": (_set(BASE, "rewards", np.zeros(N + 1)), "rewards", "rows"),
    "short next": (
        _set(BASE, "next_observations", BASE["next_observations"][1:]),
        "next_observations",
        "rows",
    ),
    "nan observations": (_nan(BASE, "observations", 3), "observations", "NaN"),
    "inf rewards": (_nan(BASE, "rewards", 7, np.inf), "rewards", "inf"),
    "nan actions": (_nan(BASE, "actions", 0), "actions", "NaN"),
    "nan next": (_nan(BASE, "next_observations", 11), "next_observations", "NaN"),
    "string actions": (_set(BASE, "actions", np.full((N, 3), b"x")), "actions", "dtype"),
    "complex rewards": (_set(BASE, "rewards", np.zeros(N, np.complex128)), "rewards", "complex"),
    "flag values": (_set(BASE, "terminals", np.full(N, 2)), "terminals", "booleans"),
    "matrix rewards": (_set(BASE, "rewards", np.zeros((N, 2))), "rewards", "shape"),
    "empty": ({k: v[:0] for k, v in BASE.items()}, "observations", "empty"),
}


@pytest.fixture
def existing_store(tmp_path):
    store = EpisodeStore(tmp_path / "existing", create=True)
    store.write([make_episode(np.random.default_rng(3), T=4)])
    return store


def assert_untouched(tmp_path, existing_store):
    assert not (tmp_path / "new").exists()
    assert existing_store.num_episodes == 1 and len(list((existing_store.path / "shards").iterdir())) == 1
    assert existing_store.provenance == {}


@pytest.mark.parametrize("case", BAD_FLAT)
def test_bad_flat_input(tmp_path, suffix, existing_store, case):
    arrays, field, match = BAD_FLAT[case]
    src = save(tmp_path / f"bad{suffix}", arrays)
    for target in (tmp_path / "new", existing_store.path):
        with pytest.raises(DataError, match=match) as info:
            IMPORTERS[suffix](src, target)
        assert info.value.field == field and info.value.path == str(src)
        assert str(src) in str(info.value) and f"'{field}'" in str(info.value)
    assert_untouched(tmp_path, existing_store)


def test_npz_object_arrays_are_rejected(tmp_path, existing_store):
    src = save(tmp_path / "obj.npz", _set(BASE, "rewards", np.array([None] * N, dtype=object)))
    with pytest.raises(DataError) as info:
        import_npz(src, existing_store.path)
    assert info.value.field == "rewards" and str(src) in str(info.value)
    assert_untouched(tmp_path, existing_store)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_corrupt_files(tmp_path, suffix, existing_store, damage):
    src = save(tmp_path / f"data{suffix}", flat_arrays())
    raw = src.read_bytes()
    if damage == "truncate":
        src.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        src.write_bytes(np.random.default_rng(0).bytes(len(raw)))
    else:
        src.unlink()
    for target in (tmp_path / "new", existing_store.path):
        with pytest.raises(DataError) as info:
            IMPORTERS[suffix](src, target)
        assert info.value.path == str(src)
    assert_untouched(tmp_path, existing_store)


def test_d4rl_group_instead_of_array(tmp_path, existing_store):
    src = save(tmp_path / "d.hdf5", _set(BASE, "rewards", None))
    with h5py.File(src, "a") as f:
        f.create_group("rewards")
    with pytest.raises(DataError, match="group") as info:
        import_d4rl(src, existing_store.path)
    assert info.value.field == "rewards"
    assert_untouched(tmp_path, existing_store)


def test_spec_mismatch_with_existing_store(tmp_path, existing_store):
    arrays = flat_arrays()
    arrays["observations"] = arrays["observations"][:, :5]
    arrays["next_observations"] = arrays["next_observations"][:, :5]
    with pytest.raises(DataError) as info:
        import_npz(save(tmp_path / "d.npz", arrays), existing_store.path)
    assert info.value.field == "observations"
    assert_untouched(tmp_path, existing_store)


# -- Minari ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory):
    """Real Minari datasets written by minari itself: Hopper (DataCollector), Dict obs, JPEG images."""
    import minari
    from minari.data_collector import EpisodeBuffer

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        env = minari.DataCollector(gym.make("Hopper-v5", max_episode_steps=25))
        env.reset(seed=1)
        for _ in range(120):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        env.create_dataset("test/hopper-v0", algorithm_name="random-policy")
        env.close()

        rng = np.random.default_rng(0)
        goal_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(-np.inf, np.inf, (4,), np.float64),
                "desired_goal": gym.spaces.Box(-np.inf, np.inf, (2,), np.float64),
            }
        )
        act_space = gym.spaces.Box(-1, 1, (2,), np.float32)

        def buffer(i, T, obs_fn):
            terminations = np.arange(T) == T - 1 if i % 2 else np.zeros(T, bool)
            return EpisodeBuffer(
                id=i,
                seed=i,
                observations=obs_fn(T + 1),
                actions=rng.uniform(-1, 1, (T, 2)).astype(np.float32),
                rewards=rng.normal(size=T),
                terminations=terminations,
                truncations=~terminations & (np.arange(T) == T - 1),
            )

        minari.create_dataset_from_buffers(
            "test/goal-v0",
            [
                buffer(
                    i,
                    T,
                    lambda n: {
                        "observation": rng.normal(size=(n, 4)),
                        "desired_goal": rng.normal(size=(n, 2)),
                    },
                )
                for i, T in enumerate([6, 3, 9])
            ],
            observation_space=goal_space,
            action_space=act_space,
        )
        image_space = gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
        minari.create_dataset_from_buffers(
            "test/images-v0",
            [
                buffer(i, T, lambda n: rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))
                for i, T in enumerate([4, 2])
            ],
            observation_space=image_space,
            action_space=act_space,
        )
    return root


def _minari_episodes(root, dataset_id):
    import minari

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        return list(minari.load_dataset(dataset_id).iterate_episodes())


@pytest.mark.parametrize("dataset_id", ["test/hopper-v0", "test/goal-v0", "test/images-v0"])
def test_import_minari_matches_minari(tmp_path, minari_root, dataset_id):
    report = import_minari(minari_root / dataset_id, tmp_path / "store")
    store = EpisodeStore(report.store_path)
    expected = _minari_episodes(minari_root, dataset_id)
    assert report.episodes == len(expected) == store.num_episodes
    assert report.transitions == sum(len(e.rewards) for e in expected)
    for ours, theirs in zip(store.iter_episodes(), expected, strict=True):
        if isinstance(theirs.observations, dict):
            for k, v in theirs.observations.items():
                np.testing.assert_array_equal(ours.observations[k], np.asarray(v, np.float32))
        else:
            obs = np.asarray(theirs.observations)
            np.testing.assert_array_equal(
                ours.observations, obs if obs.dtype == np.uint8 else obs.astype(np.float32)
            )
        np.testing.assert_array_equal(ours.actions, theirs.actions.astype(np.float32))
        np.testing.assert_array_equal(ours.rewards, theirs.rewards.astype(np.float32))
        np.testing.assert_array_equal(ours.terminated, theirs.terminations)
        np.testing.assert_array_equal(ours.truncated, theirs.truncations)
        assert ours.seed == theirs.id if dataset_id != "test/hopper-v0" else ours.seed is not None
    assert check_store(store.path).ok
    if dataset_id == "test/hopper-v0":
        assert {r.env_id for r in store.records()} == {"Hopper-v5"}
        assert {r.policy_id for r in store.records()} == {"random-policy"}
        assert store.spec.action.low == [-1.0, -1.0, -1.0]


def _damaged_copy(minari_root, tmp_path, edit):
    dest = tmp_path / "damaged"
    shutil.copytree(minari_root / "test/hopper-v0", dest)
    edit(dest / "data")
    return dest


def _h5(edit):
    def apply(data_dir):
        with h5py.File(data_dir / "main_data.hdf5", "a") as f:
            edit(f)

    return apply


def _meta(edit):
    def apply(data_dir):
        meta = json.loads((data_dir / "metadata.json").read_text())
        edit(meta)
        (data_dir / "metadata.json").write_text(json.dumps(meta))

    return apply


def _replace(f, key, fn):
    value = fn(f[key][()])
    del f[key]
    f.create_dataset(key, data=value)


def _truncate(data_dir):
    path = data_dir / "main_data.hdf5"
    path.write_bytes(path.read_bytes()[:3000])


BAD_MINARI = {
    "no metadata": (lambda d: (d / "metadata.json").unlink(), "metadata.json", "metadata.json"),
    "arrow format": (_meta(lambda m: m.update(data_format="arrow")), "metadata.json", "data_format"),
    "no action space": (_meta(lambda m: m.pop("action_space")), "metadata.json", "action_space"),
    "multi-discrete actions": (
        _meta(
            lambda m: m.update(
                action_space=json.dumps({"type": "MultiDiscrete", "nvec": [3, 2], "dtype": "int64"})
            )
        ),
        "metadata.json",
        "action_space",
    ),
    "discrete space, float actions": (
        _meta(
            lambda m: m.update(
                action_space=json.dumps({"type": "Discrete", "n": 3, "start": 0, "dtype": "int64"})
            )
        ),
        "main_data.hdf5",
        "episode_0/actions",
    ),
    "missing episode": (_h5(lambda f: f.pop("episode_2")), "main_data.hdf5", "total_episodes"),
    "missing rewards": (_h5(lambda f: f["episode_1"].pop("rewards")), "main_data.hdf5", "episode_1/rewards"),
    "nan observation": (
        _h5(lambda f: _replace(f, "episode_2/observations", lambda a: a * np.nan)),
        "main_data.hdf5",
        "episode_2/observations",
    ),
    "inf reward": (
        _h5(lambda f: _replace(f, "episode_0/rewards", lambda a: a + np.inf)),
        "main_data.hdf5",
        "episode_0/rewards",
    ),
    "short observations": (
        _h5(lambda f: _replace(f, "episode_1/observations", lambda a: a[:-1])),
        "main_data.hdf5",
        "episode_1/observations",
    ),
    "long actions": (
        _h5(lambda f: _replace(f, "episode_0/actions", lambda a: np.concatenate([a, a]))),
        "main_data.hdf5",
        "episode_0/actions",
    ),
    "wrong obs shape": (
        _h5(lambda f: _replace(f, "episode_0/observations", lambda a: a[:, :4])),
        "main_data.hdf5",
        "episode_0/observations",
    ),
    "string rewards": (
        _h5(lambda f: _replace(f, "episode_0/rewards", lambda a: a.astype("S8"))),
        "main_data.hdf5",
        "episode_0/rewards",
    ),
    "bad flags": (
        _h5(lambda f: _replace(f, "episode_0/terminations", lambda a: a.astype(int) + 3)),
        "main_data.hdf5",
        "episode_0/terminations",
    ),
    "truncated file": (_truncate, "main_data.hdf5", None),
}


@pytest.mark.parametrize("case", BAD_MINARI)
def test_bad_minari_input(tmp_path, minari_root, existing_store, case):
    edit, file, field = BAD_MINARI[case]
    src = _damaged_copy(minari_root, tmp_path, edit)
    for target in (tmp_path / "new", existing_store.path):
        with pytest.raises(DataError) as info:
            import_minari(src, target)
        assert info.value.field == field, str(info.value)
        assert file in str(info.value) and str(src) in str(info.value)
    assert_untouched(tmp_path, existing_store)


def test_bad_minari_dict_observation_names_the_key(tmp_path, minari_root):
    src = tmp_path / "goal"
    shutil.copytree(minari_root / "test/goal-v0", src)
    with h5py.File(src / "data" / "main_data.hdf5", "a") as f:
        _replace(f, "episode_1/observations/desired_goal", lambda a: a * np.inf)
    with pytest.raises(DataError, match="NaN or inf") as info:
        import_minari(src, tmp_path / "new")
    assert info.value.field == "episode_1/observations/desired_goal"
    with h5py.File(src / "data" / "main_data.hdf5", "a") as f:
        del f["episode_1/observations/desired_goal"]
    with pytest.raises(DataError, match="missing") as info:
        import_minari(src, tmp_path / "new")
    assert info.value.field == "episode_1/observations/desired_goal"
    assert not (tmp_path / "new").exists()
