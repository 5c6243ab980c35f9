"""Peak memory of loading a store: TransitionDataset.from_store vs the raw array size.

Builds a Hopper-sized store (obs 11, action 3, 1000-step episodes; 5M transitions by default),
then, in a fresh subprocess each, loads it with ``TransitionDataset.from_store`` and samples from
it with ``MemmapSampler``, and reports the peak RSS (``getrusage`` max RSS) against the raw size of
the arrays (observations + next_observations + actions + rewards + terminals + timeouts at float32).

    python benchmarks/store_memory.py [--transitions 5000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from armfarm.data import Episode, EpisodeStore

OBS_DIM, ACT_DIM, EPISODE_LEN = 11, 3, 1000
WRITE_CHUNK = 250  # episodes per write call, to keep the generator's own memory small

_CHILD = """
import json, resource, sys, time
import numpy as np
from armfarm.data import MemmapSampler, TransitionDataset
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
baseline = peak_mb()
t = time.perf_counter()
if sys.argv[2] == "dataset":
    ds = TransitionDataset.from_store(sys.argv[1])
    size = ds.size
else:
    ds = MemmapSampler.from_store(sys.argv[1])
    rng = np.random.default_rng(0)
    for _ in range(200):
        ds.sample_stacked(rng, 8, 256)
    size = ds.size
print(json.dumps({"baseline_mb": baseline, "peak_mb": peak_mb(), "seconds": time.perf_counter() - t, "size": size}))
"""


def build_store(path: Path, transitions: int) -> int:
    rng = np.random.default_rng(0)
    store = EpisodeStore(path, create=True)
    n_episodes = max(1, transitions // EPISODE_LEN)
    for start in range(0, n_episodes, WRITE_CHUNK):
        chunk = []
        for _ in range(min(WRITE_CHUNK, n_episodes - start)):
            terminated = np.zeros(EPISODE_LEN, dtype=bool)
            terminated[-1] = True
            chunk.append(
                Episode(
                    rng.standard_normal((EPISODE_LEN + 1, OBS_DIM), dtype=np.float32),
                    rng.uniform(-1, 1, (EPISODE_LEN, ACT_DIM)).astype(np.float32),
                    rng.standard_normal(EPISODE_LEN, dtype=np.float32),
                    terminated,
                    np.zeros(EPISODE_LEN, dtype=bool),
                )
            )
        store.write(chunk)
    return store.num_transitions


def measure(store_path: Path, mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(store_path), mode], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transitions", type=int, default=5_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        t0 = time.perf_counter()
        n = build_store(scratch / "store", args.transitions)
        build_s = time.perf_counter() - t0
        raw_mb = n * (OBS_DIM * 2 + ACT_DIM + 3) * 4 / 2**20
        shards = len(list((scratch / "store" / "shards").iterdir()))
        dataset, sampler = measure(scratch / "store", "dataset"), measure(scratch / "store", "sampler")
        print(
            f"\n{n:,} transitions in {shards} shards (store built in {build_s:.1f} s); raw arrays {raw_mb:.0f} MiB; "
            f"generator peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB\n"
        )
        print(
            "| loader | seconds | baseline RSS MiB (imports) | peak RSS MiB | peak / raw | (peak - baseline) / raw |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for name, r in (
            ("TransitionDataset.from_store", dataset),
            ("MemmapSampler.from_store + 200 x sample_stacked(8, 256)", sampler),
        ):
            print(
                f"| {name} | {r['seconds']:.2f} | {r['baseline_mb']:.0f} | {r['peak_mb']:.0f} | "
                f"{r['peak_mb'] / raw_mb:.2f} | {(r['peak_mb'] - r['baseline_mb']) / raw_mb:.2f} |"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
