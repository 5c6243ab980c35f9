"""Shard format benchmark: Arrow IPC (what the store uses) vs Parquet for a Hopper-sized dataset.

Writes and loads the same table (the store's shard schema: obs 11, action 3, 1000-step episodes)
in each format and prints a markdown table of write time, load time (into NumPy arrays, with the
file in the page cache and evicted from it) and size on disk. Also times the store end to end
(``EpisodeStore.write`` and ``TransitionDataset.from_store``).

    python benchmarks/store_format.py [--transitions 1000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from armfarm.data import Episode, EpisodeStore, StoreSpec, TransitionDataset
from armfarm.data.shards import build_table
from armfarm.durable import fsync_path

OBS_DIM, ACT_DIM, EPISODE_LEN = 11, 3, 1000


def hopper_episodes(transitions: int, seed: int = 0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(max(1, transitions // EPISODE_LEN)):
        T = EPISODE_LEN
        terminated = np.zeros(T, dtype=bool)
        terminated[-1] = True
        episodes.append(
            Episode(
                rng.standard_normal((T + 1, OBS_DIM), dtype=np.float32),
                rng.uniform(-1, 1, (T, ACT_DIM)).astype(np.float32),
                rng.standard_normal(T, dtype=np.float32),
                terminated,
                np.zeros(T, dtype=bool),
            )
        )
    return episodes


def evict(path: Path) -> None:
    """Drop a (clean, fsynced) file's pages from the page cache, for a cold read."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def to_numpy(table: pa.Table) -> dict[str, np.ndarray]:
    """Copy the learning columns out of a table (as a loader must)."""
    out = {}
    for name in ("observation", "action"):
        column = table.column(name).combine_chunks()
        out[name] = np.array(column.flatten().to_numpy(zero_copy_only=False)).reshape(len(column), -1)
    for name in ("reward", "terminated", "truncated", "is_last"):
        out[name] = table.column(name).to_numpy()
    return out


def bench_file(path: Path, table: pa.Table, fmt: str) -> dict[str, float]:
    """One round: write (with fsync), best of 3 cached loads, one cold load; plus the file size."""
    t0 = time.perf_counter()
    if fmt == "arrow":
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        pq.write_table(table, path, compression=fmt.split("-", 1)[1])
    fsync_path(path)
    write_s = time.perf_counter() - t0

    def load() -> float:
        t = time.perf_counter()
        if fmt == "arrow":
            with pa.memory_map(str(path), "r") as source:
                arrays = to_numpy(pa.ipc.open_file(source).read_all())
        else:
            arrays = to_numpy(pq.read_table(path))
        assert len(arrays["reward"]) == table.num_rows
        return time.perf_counter() - t

    load()  # warm the cache and the code paths
    warm = min(load() for _ in range(3))
    evict(path)
    cold = load()
    return {
        "write_s": write_s,
        "load_warm_s": warm,
        "load_cold_s": cold,
        "size_mb": path.stat().st_size / 1e6,
    }


def bench_store(path: Path, episodes: list[Episode]) -> dict[str, float]:
    """One round of the store end to end: EpisodeStore.write, then TransitionDataset.from_store."""
    shutil.rmtree(path, ignore_errors=True)
    t0 = time.perf_counter()
    store = EpisodeStore(path, create=True)
    store.write(episodes)
    write_s = time.perf_counter() - t0
    TransitionDataset.from_store(store)
    t0 = time.perf_counter()
    TransitionDataset.from_store(store)
    warm = time.perf_counter() - t0
    evict(path / "shards")
    t0 = time.perf_counter()
    TransitionDataset.from_store(store)
    cold = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
    return {"write_s": write_s, "load_warm_s": warm, "load_cold_s": cold, "size_mb": size}


def median_of(rounds: int, fn) -> dict[str, float]:
    results = [fn() for _ in range(rounds)]
    return {k: float(np.median([r[k] for r in results])) for k in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="repetitions; the table shows medians")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        episodes = hopper_episodes(args.transitions)
        table = build_table(episodes, StoreSpec.from_episode(episodes[0]))
        rows = {}
        for fmt in ("arrow", "parquet-none", "parquet-snappy", "parquet-zstd"):
            path = scratch / f"data-{fmt}{'.arrow' if fmt == 'arrow' else '.parquet'}"
            rows[fmt] = median_of(args.rounds, lambda fmt=fmt, path=path: bench_file(path, table, fmt))
        rows["EpisodeStore.write / TransitionDataset.from_store"] = median_of(
            args.rounds, lambda: bench_store(scratch / "store", episodes)
        )
        n = sum(ep.length for ep in episodes)
        print(
            f"\n{n:,} transitions ({table.num_rows:,} rows), obs {OBS_DIM}, action {ACT_DIM}, {len(episodes)} episodes"
        )
        print(f"medians of {args.rounds} rounds; load = into NumPy arrays\n")
        print("| format | write s | load s (cached) | load s (cold) | size MB |")
        print("|---|---:|---:|---:|---:|")
        for fmt, r in rows.items():
            print(
                f"| {fmt} | {r['write_s']:.2f} | {r['load_warm_s']:.3f} | {r['load_cold_s']:.3f} | {r['size_mb']:.0f} |"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
