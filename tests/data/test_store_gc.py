"""collect_garbage: old leftovers of interrupted writes go, young ones and committed data stay, and a
write whose pending shard was collected fails without acknowledging anything."""

import os
import time

import numpy as np
import pytest
from episode_factory import make_episode
from typer.testing import CliRunner

from armfarm.cli.main import app
from armfarm.data import DataError, EpisodeStore, TransitionDataset, check_store


def sql(store, query, *args):
    with store.index.transaction(write=True) as cur:
        cur.execute(query, args)


def age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


@pytest.fixture
def store(tmp_path, index_url):
    store = EpisodeStore(tmp_path / "s", create=True, index_url=index_url)
    store.write([make_episode(np.random.default_rng(0), T=5) for _ in range(3)])
    return store


def leave_leftovers(store):
    """An old and a young file in tmp/, an old and a young pending shard (one renamed in, one not)."""
    (store.path / "tmp" / "old.arrow").write_bytes(b"half written")
    age(store.path / "tmp" / "old.arrow", 7200)
    (store.path / "tmp" / "young.arrow").write_bytes(b"being written")
    sql(store, "INSERT INTO shards VALUES ('0ld.arrow', 3, 10, 'x', 'pending', '2020-01-01T00:00:00+00:00')")
    (store.path / "shards" / "0ld.arrow").write_bytes(b"renamed, never committed")
    sql(store, "INSERT INTO shards VALUES ('new.arrow', 3, 10, 'x', 'pending', ?)",
        time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
    (store.path / "tmp" / "new.arrow").write_bytes(b"registered, not yet renamed")


def test_old_leftovers_go_and_everything_else_stays(store):
    before = TransitionDataset.from_store(store.path).observations.copy()
    leave_leftovers(store)
    assert sorted(store.collect_garbage(dry_run=True)) == ["shards/0ld.arrow", "tmp/old.arrow"]
    assert (store.path / "tmp" / "old.arrow").exists()
    assert sorted(store.collect_garbage()) == ["shards/0ld.arrow", "tmp/old.arrow"]
    assert not (store.path / "tmp" / "old.arrow").exists() and not (store.path / "shards" / "0ld.arrow").exists()
    assert (store.path / "tmp" / "young.arrow").exists() and (store.path / "tmp" / "new.arrow").exists()
    assert {s.name for s in store.shards() if s.status == "pending"} == {"new.arrow"}
    report = check_store(store.path)
    assert report.ok and len(report.warnings) == 3  # young.arrow, new.arrow's file and its pending row
    np.testing.assert_array_equal(TransitionDataset.from_store(store.path).observations, before)
    assert sorted(store.collect_garbage(older_than_s=0)) == ["shards/new.arrow", "tmp/new.arrow", "tmp/young.arrow"]
    assert check_store(store.path).warnings == [] and store.num_episodes == 3


def test_a_write_whose_pending_shard_was_collected_fails_unacknowledged(store, monkeypatch):
    """Simulate a writer paused past the age limit between registering its shard and committing."""
    original = store.index.transaction
    calls = {"n": 0}

    def transaction(write=False):
        if write:
            calls["n"] += 1
            if calls["n"] == 3:  # (1) binds the spec, (2) registers the shard; gc runs just before the commit (3)
                monkeypatch.setattr(store.index, "transaction", original)
                store.collect_garbage(older_than_s=0)
        return original(write)

    monkeypatch.setattr(store.index, "transaction", transaction)
    with pytest.raises(DataError, match="removed as abandoned"):
        store.write([make_episode(np.random.default_rng(1), T=4)])
    assert store.num_episodes == 3
    report = check_store(store.path)
    assert report.ok and report.warnings == []


def test_cli_gc(store):
    leave_leftovers(store)
    runner = CliRunner()
    result = runner.invoke(app, ["data", "gc", str(store.path), "--dry-run"])
    assert result.exit_code == 0 and "would remove tmp/old.arrow" in result.output
    assert (store.path / "tmp" / "old.arrow").exists()
    result = runner.invoke(app, ["data", "gc", str(store.path)])
    assert result.exit_code == 0 and "2 leftover(s) removed" in result.output
    assert not (store.path / "tmp" / "old.arrow").exists()
