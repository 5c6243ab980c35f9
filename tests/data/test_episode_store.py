"""EpisodeStore: round trips, spec binding, duplicates, metadata, snapshots, errors."""

import json
import sqlite3

import gymnasium as gym
import numpy as np
import pytest
from episode_factory import assert_episodes_equal, make_episode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from armfarm.data import SCHEMA_VERSION, DataError, Episode, EpisodeStore, StoreSpec, check_store
from armfarm.data import shards as shards_module


@pytest.fixture
def store(tmp_path, index_url):
    return EpisodeStore(tmp_path / "store", create=True, index_url=index_url)


@pytest.mark.parametrize("dict_obs", [False, True])
def test_round_trip(store, dict_obs):
    rng = np.random.default_rng(0)
    episodes = [
        make_episode(
            rng,
            T=t,
            dict_obs=dict_obs,
            end=end,
            collector_id="arm-3",
            policy_id="bc-v2",
            env_id="Hopper-v5",
            seed=s,
        )
        for t, end, s in [(7, "terminated", 1), (1, "truncated", None), (12, "none", 2**64 - 1)]
    ]
    assert store.write(episodes) == [ep.episode_id for ep in episodes]
    reopened = EpisodeStore(store.path)
    for ep in episodes:
        assert_episodes_equal(reopened.read_episode(ep.episode_id), ep)
    for ep, back in zip(episodes, reopened.iter_episodes(), strict=True):
        assert_episodes_equal(back, ep)
    records = reopened.records()
    assert [r.length for r in records] == [7, 1, 12]
    assert [r.terminated for r in records] == [True, False, False]
    assert records[0].episode_return == pytest.approx(episodes[0].episode_return, abs=0)
    assert reopened.num_episodes == 3 and reopened.num_transitions == 20
    assert check_store(store.path).ok


def test_images_keep_shape_and_dtype(store):
    rng = np.random.default_rng(0)
    ep = Episode(
        rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8),
        rng.normal(size=(4, 2)).astype(np.float32),
        np.ones(4, np.float32),
        [False, False, False, True],
        [False] * 4,
    )
    store.write([ep])
    assert_episodes_equal(store.read_episode(ep.episode_id), ep)
    assert store.spec.observation.shape == (16, 16, 3) and store.spec.observation.dtype == "uint8"


def test_float64_is_stored_as_float32(store):
    ep = make_episode(np.random.default_rng(0))
    ep.observations = ep.observations.astype(np.float64) / 3
    store.write([ep])
    back = store.read_episode(ep.episode_id)
    assert back.observations.dtype == np.float32
    np.testing.assert_array_equal(back.observations, ep.observations.astype(np.float32))


def test_opening_non_stores(tmp_path):
    with pytest.raises(DataError, match="no episode store") as info:
        EpisodeStore(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(info.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not an armfarm episode store"):
        EpisodeStore(tmp_path / "plain")
    (tmp_path / "plain" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="non-empty directory"):
        EpisodeStore(tmp_path / "plain", create=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a directory"):
        EpisodeStore(tmp_path / "file", create=True)


def test_header_is_checked(store):
    header = json.loads((store.path / "store.json").read_text())
    (store.path / "store.json").write_text(json.dumps({**header, "schema_version": 99}))
    with pytest.raises(DataError, match="upgrade armfarm") as info:
        EpisodeStore(store.path)
    assert info.value.field == "schema_version"
    (store.path / "store.json").write_text(json.dumps({**header, "format": "something-else"}))
    with pytest.raises(DataError) as info:
        EpisodeStore(store.path)
    assert info.value.field == "format"


def test_create_on_existing_store_opens_it(store):
    store.write([make_episode(np.random.default_rng(0))])
    assert EpisodeStore(store.path, create=True).num_episodes == 1


def test_first_write_binds_spec(store, index_url):
    rng = np.random.default_rng(0)
    assert store.spec is None
    store.write([make_episode(rng)])
    for bad, field in [
        (make_episode(rng, obs_shape=(4,)), "observations"),
        (make_episode(rng, act_shape=(2,)), "actions"),
        (make_episode(rng, dict_obs=True), "observations"),
    ]:
        with pytest.raises(DataError) as info:
            store.write([make_episode(rng), bad])
        assert info.value.field == field and str(store.path) in str(info.value)
    assert store.num_episodes == 1
    mixed = [make_episode(rng, obs_shape=(2,)), make_episode(rng, obs_shape=(3,))]
    other = EpisodeStore(store.path.parent / "other", create=True, index_url=index_url)
    with pytest.raises(DataError):
        other.write(mixed)
    assert other.spec is None and other.num_episodes == 0


def test_spec_from_gymnasium_records_bounds(tmp_path, index_url):
    env = gym.make("Hopper-v5")
    spec = StoreSpec.from_gymnasium(env.observation_space, env.action_space)
    store = EpisodeStore(tmp_path / "s", create=True, spec=spec, index_url=index_url)
    store.write([make_episode(np.random.default_rng(0))])
    assert store.info()["spaces"]["action"]["low"] == [-1.0, -1.0, -1.0]
    assert EpisodeStore(tmp_path / "s", create=True, spec=spec).spec == spec
    wide = StoreSpec(spec.observation, type(spec.action)((3,), "float32", [-2.0] * 3, [2.0] * 3))
    with pytest.raises(DataError, match="bounds") as info:
        EpisodeStore(tmp_path / "s", spec=wide)
    assert info.value.field == "actions"
    with pytest.raises(DataError):
        EpisodeStore(
            tmp_path / "s",
            spec=StoreSpec.from_episode(make_episode(np.random.default_rng(0), T=2, obs_shape=(5,))),
        )


def test_write_is_all_or_nothing(store):
    rng = np.random.default_rng(0)
    bad = make_episode(rng)
    bad.rewards[3] = np.nan
    with pytest.raises(DataError, match="NaN") as info:
        store.write([make_episode(rng), make_episode(rng), bad])
    assert info.value.field == "rewards" and bad.episode_id in str(info.value)
    assert store.num_episodes == 0 and store.spec is None
    assert not list((store.path / "shards").iterdir()) and not list((store.path / "tmp").iterdir())


def test_duplicates(store):
    rng = np.random.default_rng(0)
    first = [make_episode(rng, episode_id=f"ep{i}") for i in range(3)]
    store.write(first)
    again = [make_episode(rng, episode_id="ep1"), make_episode(rng, episode_id="new")]
    with pytest.raises(DataError, match="ep1") as info:
        store.write(again)
    assert info.value.field == "episode_id"
    twice = [make_episode(rng, episode_id="x"), make_episode(rng, episode_id="x")]
    with pytest.raises(DataError, match="twice"):
        store.write(twice)
    assert store.num_episodes == 3
    assert store.write(again + twice, on_duplicate="skip") == ["new", "x"]
    assert store.write(again, on_duplicate="skip") == []
    assert_episodes_equal(store.read_episode("ep1"), first[1])
    assert_episodes_equal(store.read_episode("x"), twice[0])
    assert sorted(r.episode_id for r in store.records()) == ["ep0", "ep1", "ep2", "new", "x"]
    with pytest.raises(DataError) as info:
        store.write(again, on_duplicate="overwrite")
    assert info.value.field == "on_duplicate"
    assert check_store(store.path).ok


def test_info_and_provenance(store):
    rng = np.random.default_rng(0)
    store.write(
        [
            make_episode(rng, T=4, collector_id="a", policy_id="p1", env_id="E"),
            make_episode(rng, T=6, collector_id="a", policy_id="p2", env_id="E"),
            make_episode(rng, T=8, collector_id="b", policy_id="p2", env_id="E"),
        ]
    )
    store.set_provenance({"robot": "arm-7", "site": {"lab": 2}})
    store.set_provenance({"site": "field"})
    info = json.loads(json.dumps(store.info()))
    assert info["episodes"] == 3 and info["transitions"] == 18 and info["schema_version"] == SCHEMA_VERSION
    assert info["lengths"] == {"mean": 6.0, "min": 4.0, "max": 8.0}
    returns = [r.episode_return for r in store.records()]
    assert info["returns"]["mean"] == pytest.approx(np.mean(returns))
    assert info["returns"]["std"] == pytest.approx(np.std(returns))
    assert info["collectors"] == {"a": 2, "b": 1} and info["policies"] == {"p1": 1, "p2": 2}
    assert info["envs"] == {"E": 3}
    assert info["provenance"] == {"robot": "arm-7", "site": "field"} == store.provenance
    assert StoreSpec.from_json(info["spaces"]) == store.spec
    assert [r.collector_id for r in store.records(collector_id="a")] == ["a", "a"]
    with pytest.raises(DataError):
        store.set_provenance({"bad": object()})


def test_empty_store_info(store):
    info = store.info()
    assert info["episodes"] == 0 and info["transitions"] == 0 and info["returns"] is None
    with pytest.raises(DataError, match="no episode"):
        store.read_episode("nope")


def test_snapshot_isolation(store):
    rng = np.random.default_rng(0)
    store.write([make_episode(rng) for _ in range(3)])
    snapshot = store.snapshot()
    frozen = list(snapshot)
    store.write([make_episode(rng) for _ in range(2)])
    assert snapshot == frozen and len(store.snapshot()) == 5
    assert [ep.episode_id for ep in store.iter_episodes(snapshot)] == [r.episode_id for r in frozen]


def test_large_writes_split_into_shards(store, monkeypatch):
    monkeypatch.setattr(shards_module, "TARGET_SHARD_BYTES", 2000)
    rng = np.random.default_rng(0)
    episodes = [make_episode(rng, T=t) for t in (3, 20, 5, 5, 40, 2)]
    store.write(episodes)
    assert len({r.shard for r in store.records()}) > 2
    for ep in episodes:
        assert_episodes_equal(store.read_episode(ep.episode_id), ep)
    assert check_store(store.path).ok


def test_sqlite_index_settings(tmp_path):
    store = EpisodeStore(tmp_path / "store", create=True)
    assert json.loads((store.path / "store.json").read_text())["index"] == {"backend": "sqlite"}
    con = sqlite3.connect(store.path / "index.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "spec", "shards", "episodes"} <= tables
    con.close()


def test_postgres_index_location(tmp_path, postgres_url):
    """The index lives in its own schema; store.json says where, without any password."""
    secret_url = postgres_url.replace("postgres@", "postgres:hunter2@")
    store = EpisodeStore(tmp_path / "store", create=True, index_url=secret_url)
    header = json.loads((store.path / "store.json").read_text())
    assert header["index"]["backend"] == "postgresql" and header["index"]["url"] == postgres_url
    assert "hunter2" not in (store.path / "store.json").read_text()
    assert not (store.path / "index.sqlite").exists()
    with store.index.transaction() as cur:
        tables = {r[0] for r in cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [header["index"]["schema"]]
        )}
    assert {"meta", "spec", "shards", "episodes"} <= tables
    other = EpisodeStore(tmp_path / "other", create=True, index_url=postgres_url)
    assert other.index.location.schema != store.index.location.schema
    store.write([make_episode(np.random.default_rng(0))])
    assert EpisodeStore(store.path).num_episodes == 1 and other.num_episodes == 0
    assert EpisodeStore(store.path, index_url=secret_url).num_episodes == 1
    with pytest.raises(DataError, match="keeps its index in") as info:
        EpisodeStore(store.path, index_url="sqlite")
    assert info.value.field == "index_url"


def test_unreachable_postgres_index_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="index error") as info:
        EpisodeStore(tmp_path / "s", create=True, index_url="postgresql://nobody@127.0.0.1:1/none")
    assert "127.0.0.1:1" in str(info.value)
    with pytest.raises(DataError, match="neither 'sqlite' nor a postgresql"):
        EpisodeStore(tmp_path / "t", create=True, index_url="mysql://x")


finite32 = st.floats(-1e6, 1e6, width=32)


@st.composite
def episodes(draw):
    T = draw(st.integers(1, 12))
    obs_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    act_shape = draw(hnp.array_shapes(min_dims=1, max_dims=1, max_side=3))
    obs = draw(hnp.arrays(np.float32, (T + 1, *obs_shape), elements=finite32))
    if draw(st.booleans()):
        obs = {"a": obs, "b": draw(hnp.arrays(np.uint8, (T + 1, 2)))}
    end = draw(st.sampled_from(["terminated", "truncated", "both", "none"]))
    terminated, truncated = np.zeros(T, bool), np.zeros(T, bool)
    terminated[-1] = end in ("terminated", "both")
    truncated[-1] = end in ("truncated", "both")
    return Episode(
        observations=obs,
        actions=draw(hnp.arrays(np.float32, (T, *act_shape), elements=finite32)),
        rewards=draw(hnp.arrays(np.float32, (T,), elements=finite32)),
        terminated=terminated,
        truncated=truncated,
        seed=draw(st.none() | st.integers(0, 2**64 - 1)),
        collector_id=draw(st.text(max_size=5)),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(episodes())
def test_random_episodes_round_trip(tmp_path_factory, episode):
    store = EpisodeStore(tmp_path_factory.mktemp("prop"), create=True)
    store.write([episode])
    assert_episodes_equal(store.read_episode(episode.episode_id), episode)
    assert store.records()[0].episode_return == episode.episode_return


def test_failed_write_cleans_up(store, monkeypatch):
    import armfarm.data.store as store_module

    rng = np.random.default_rng(0)
    store.write([make_episode(rng)])

    def broken_rename(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(store_module.os, "rename", broken_rename)
    with pytest.raises(OSError, match="disk on fire"):
        store.write([make_episode(rng)])
    monkeypatch.undo()
    assert store.num_episodes == 1 and len(store.shards()) == 1
    assert len(list((store.path / "shards").iterdir())) == 1 and not list((store.path / "tmp").iterdir())
    report = check_store(store.path)
    assert report.ok and not report.warnings


def test_duplicate_race_is_resolved(store, monkeypatch):
    """Another writer commits one of our ids between our duplicate check and our commit."""
    rng = np.random.default_rng(0)
    store.write([make_episode(rng, episode_id="theirs")])
    real = EpisodeStore._existing_ids
    calls = []

    def stale_check(self, ids):  # the first check misses the concurrent write
        calls.append(ids)
        return set() if len(calls) == 1 else real(self, ids)

    monkeypatch.setattr(EpisodeStore, "_existing_ids", stale_check)
    with pytest.raises(DataError, match="concurrently"):
        store.write([make_episode(rng, episode_id="mine"), make_episode(rng, episode_id="theirs")])
    calls.clear()
    assert store.write(
        [make_episode(rng, episode_id="mine"), make_episode(rng, episode_id="theirs")], on_duplicate="skip"
    ) == ["mine"]
    assert sorted(r.episode_id for r in store.records()) == ["mine", "theirs"]
    report = check_store(store.path)
    assert report.ok and not report.warnings and len(store.shards()) == 2
