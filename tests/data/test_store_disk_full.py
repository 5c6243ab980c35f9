"""A full disk under the store: the write fails with a clear DataError, leaves no partial shard, and
damages nothing already stored."""


import numpy as np
import pytest
from episode_factory import make_episode

from armfarm.data import DataError, EpisodeStore, check_store


@pytest.fixture
def tiny_disk(tmp_path, tmpfs):
    return tmpfs(tmp_path / "disk", "1m")


def test_a_full_disk_refuses_the_write_and_keeps_the_store_whole(tiny_disk):
    store = EpisodeStore(tiny_disk / "store", create=True)
    written, rng = [], np.random.default_rng(0)
    with pytest.raises(DataError, match="No space left on device"):
        for _ in range(1000):
            episode = make_episode(rng, T=500, obs_shape=(40,))
            store.write([episode])
            written.append(episode.episode_id)
    assert written, "the disk filled before the first episode"
    assert list((store.path / "tmp").iterdir()) == []  # no partial shard left behind
    report = check_store(store.path)
    assert report.ok, report.problems
    assert [r.episode_id for r in EpisodeStore(store.path).snapshot()] == written
