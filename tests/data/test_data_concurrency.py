"""Many writer processes, readers during writes, and SIGKILLed writers."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import store_workers
from episode_factory import assert_episodes_equal

from armfarm.data import EpisodeStore, TransitionDataset, check_store

HERE = Path(__file__).parent


def test_four_processes_write_concurrently(tmp_path, index_url):
    path = str(tmp_path / "store")  # the workers race to create it, too
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=store_workers.write_many, args=(path, w, 25, index_url)) for w in range(4)]
    for p in workers:
        p.start()
    snapshots = 0
    while any(p.is_alive() for p in workers):
        if os.path.exists(os.path.join(path, "store.json")):
            store = EpisodeStore(path)
            snapshot = store.snapshot()
            if snapshot:  # every snapshot is readable as a whole, whatever is being written
                assert [r.seq for r in snapshot] == sorted(r.seq for r in snapshot)
                ds = TransitionDataset.from_store(store, records=snapshot)
                assert ds.size == sum(r.length for r in snapshot)
                snapshots += 1
        time.sleep(0.05)
    assert [p.exitcode for p in workers] == [0] * 4
    store = EpisodeStore(path)
    records = store.records()
    assert len(records) == 100 == len({r.episode_id for r in records})
    assert store.info()["collectors"] == {f"worker-{w}": 25 for w in range(4)}
    report = check_store(path)
    assert report.ok, report.problems
    assert report.episodes == 100 and snapshots > 0


def test_processes_creating_one_store_at_once_all_open_it(tmp_path):
    """Creators that start together all succeed (SQLite may refuse a journal-mode change at once)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, failures, count = ctx.Barrier(6), ctx.Queue(), 40
    workers = [
        ctx.Process(target=store_workers.create_in_step, args=(str(tmp_path), w, count, barrier, failures))
        for w in range(6)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join()
    assert [p.exitcode for p in workers] == [0] * 6
    errors = []
    while not failures.empty():
        errors.append(failures.get())
    assert errors == []
    assert all(check_store(tmp_path / str(i)).ok for i in range(count))


def test_concurrent_skip_writes_store_each_id_once(tmp_path, index_url):
    path = str(tmp_path / "store")
    EpisodeStore(path, create=True, index_url=index_url)
    ids = [f"shared-{i}" for i in range(15)]
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=store_workers.write_shared, args=(path, w, ids)) for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join()
    assert [p.exitcode for p in workers] == [0, 0]
    assert sorted(r.episode_id for r in EpisodeStore(path).records()) == sorted(ids)
    assert check_store(path).ok


def test_sigkill_leaves_whole_episodes(tmp_path, index_url):
    path = tmp_path / "store"
    rng = np.random.default_rng(0)
    acked: list[str] = []
    for round_ in range(25):  # at least 5 kills, and more until one lands inside a write
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "store_workers.py"), str(path), str(round_), index_url],
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )
        first = proc.stdout.readline()  # the writer is up and has committed once
        assert first.endswith("\n"), "writer failed to start"
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
        lines = [first] + rest.splitlines(keepends=True)
        acked += [i for line in lines if line.endswith("\n") for i in line.split()]

        store = EpisodeStore(path)  # opens after every crash
        report = check_store(path)
        assert report.ok, report.problems
        stored = {r.episode_id: r for r in store.records()}
        assert set(acked) <= set(stored)
        batches = {i.rsplit("-", 1)[0] for i in stored}
        for batch in batches:  # a write is atomic: all episodes of a batch or none
            assert all(f"{batch}-e{j}" in stored for j in range(store_workers.CRASH_BATCH))
        if round_ >= 4 and report.warnings:
            break
    assert report.warnings, "no kill landed inside a write; the test exercised nothing"
    for episode_id in rng.choice(sorted(stored), size=10, replace=False):
        round_, batch, j = (int(part[1:]) for part in episode_id.split("-"))
        expected = store_workers.crash_episode(round_, batch, j)
        assert_episodes_equal(store.read_episode(episode_id), expected, metadata=False)
