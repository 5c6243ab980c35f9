"""check_store: healthy stores pass; damage is a problem; crash leftovers are warnings."""

import numpy as np
import pytest
from episode_factory import make_episode

from armfarm.data import EpisodeStore, check_store
from armfarm.data.shards import build_table, write_shard


@pytest.fixture
def store(tmp_path, index_url):
    store = EpisodeStore(tmp_path / "s", create=True, index_url=index_url)
    rng = np.random.default_rng(0)
    store.write([make_episode(rng, T=5), make_episode(rng, T=3, end="truncated")])
    store.write([make_episode(rng, T=4, dict_obs=False, end="none")])
    return store


def shard_file(store, i=0):
    return store.shard_path(store.records()[i].shard)


def sql(store, query, *args):
    """Change the index behind the store's back."""
    with store.index.transaction(write=True) as cur:
        cur.execute(query, args)


def test_healthy(store):
    report = check_store(store.path)
    assert report.ok and report.problems == [] and report.warnings == []
    assert (report.episodes, report.transitions) == (3, 12)
    assert "OK" in str(report)


def test_not_a_store(tmp_path):
    report = check_store(tmp_path)
    assert not report.ok and "store.json" in report.problems[0]


def test_corrupt_shard(store):
    path = shard_file(store)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    report = check_store(store.path)
    assert not report.ok and any(path.name in p and "SHA-256" in p for p in report.problems)


def test_truncated_and_missing_shards(store):
    first, last = shard_file(store, 0), shard_file(store, 2)
    first.write_bytes(first.read_bytes()[:100])
    last.unlink()
    problems = check_store(store.path).problems
    assert any(first.name in p and "bytes" in p for p in problems)
    assert any(last.name in p and "missing" in p for p in problems)


def test_orphans_and_leftovers(store):
    (store.path / "shards" / "deadbeef.arrow").write_bytes(b"junk")
    report = check_store(store.path)
    assert not report.ok and "orphan" in report.problems[0]
    (store.path / "shards" / "deadbeef.arrow").unlink()
    (store.path / "tmp" / "cafe.arrow").write_bytes(b"half written")
    sql(store, "INSERT INTO shards VALUES ('f00d.arrow', 3, 10, 'x', 'pending', 'now')")
    (store.path / "shards" / "f00d.arrow").write_bytes(b"renamed but never committed")
    report = check_store(store.path)
    assert report.ok and len(report.warnings) == 2
    assert any("tmp/cafe.arrow" in w for w in report.warnings)
    assert any("f00d.arrow" in w and "pending" in w for w in report.warnings)


def test_index_disagrees_with_shard(store):
    victim = store.records()[1]
    sql(store, 'UPDATE episodes SET "return" = "return" + 1 WHERE episode_id = ?', victim.episode_id)
    sql(store, "UPDATE episodes SET terminated = 1 WHERE episode_id = ?", victim.episode_id)
    problems = check_store(store.path).problems
    assert any(victim.episode_id in p and "return" in p for p in problems)
    assert any(victim.episode_id in p and "terminated" in p for p in problems)
    sql(store, "UPDATE episodes SET length = length + 1 WHERE episode_id = ?", victim.episode_id)
    assert any("tile" in p for p in check_store(store.path).problems)


def test_bad_values_written_behind_the_stores_back(store):
    """A well-formed shard holding NaN (bypassing validation) is still caught."""
    rec = store.records()[2]
    ep = store.read_episode(rec.episode_id)
    ep.observations[1, 4] = np.nan
    path = store.shard_path(rec.shard)
    size, digest = write_shard(path, build_table([ep], store.spec))
    sql(store, "UPDATE shards SET bytes = ?, sha256 = ? WHERE name = ?", size, digest, rec.shard)
    problems = check_store(store.path).problems
    assert len(problems) == 1 and "non-finite" in problems[0] and rec.episode_id in problems[0]
