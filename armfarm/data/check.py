"""Integrity check of an episode store.

:func:`check_store` reads everything and reports *problems* (the store is damaged: a missing,
altered or unreadable shard, an index row that does not match its shard, non-finite values, files
nobody registered) and *warnings* (harmless leftovers of interrupted writes: files in ``tmp/`` and
shards still marked pending). It never modifies the store and can run while others write.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from armfarm.data.errors import DataError
from armfarm.data.schema import StoreSpec
from armfarm.data.shards import ShardReader, file_sha256
from armfarm.data.store import SHARDS_DIR, TMP_DIR, EpisodeRecord, EpisodeStore, ShardRecord


@dataclass
class CheckReport:
    """Outcome of :func:`check_store`; ``ok`` means no problems (warnings are allowed)."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    episodes: int = 0
    transitions: int = 0

    def __str__(self) -> str:
        head = f"{'OK' if self.ok else 'DAMAGED'}: {self.episodes} episodes, {self.transitions} transitions"
        lines = [head] + [f"problem: {p}" for p in self.problems] + [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def check_store(path: str | os.PathLike) -> CheckReport:
    """Verify a store: header and schema version, index, every shard and every episode.

    For each committed shard: the file exists with the recorded size and SHA-256, opens as an Arrow
    file with the store's columns, and its rows are exactly covered by its episodes. For each
    episode: its rows carry its id and steps ``0..T``, only the last row is ``is_last`` (with zero
    action, reward and flags), flags are set only on the last transition and agree with the index,
    the return matches the index, and all values are finite. Files in ``shards/`` that the index
    does not know are problems; files in ``tmp/`` and pending shards are warnings.
    """
    path = Path(path)
    try:
        store = EpisodeStore(path)
    except DataError as e:
        return CheckReport(ok=False, problems=[str(e)])
    problems: list[str] = []
    warnings: list[str] = []
    # List files before reading the index: shards are registered before they are renamed in, so a
    # file listed here but unknown to the (later) index was never registered.
    shard_files = set(os.listdir(path / SHARDS_DIR)) if (path / SHARDS_DIR).is_dir() else set()
    tmp_files = sorted(os.listdir(path / TMP_DIR)) if (path / TMP_DIR).is_dir() else []
    try:
        header_version = json.loads((path / "store.json").read_text())["schema_version"]
        records, shard_list = store.index_snapshot()
        shards = {s.name: s for s in shard_list}
        spec = store.spec
        meta_version = store.info()["schema_version"]
    except DataError as e:
        return CheckReport(ok=False, problems=[str(e)])
    if meta_version != header_version:
        problems.append(
            f"schema version {meta_version} in the index differs from {header_version} in store.json"
        )
    transitions = sum(r.length for r in records)
    if records and spec is None:
        problems.append("the index has episodes but no spec")
        return CheckReport(False, problems, warnings, len(records), transitions)

    warnings += [f"{TMP_DIR}/{name}: leftover of an interrupted write (safe to delete)" for name in tmp_files]
    by_shard: dict[str, list[EpisodeRecord]] = defaultdict(list)
    for rec in records:
        by_shard[rec.shard].append(rec)
    for name in sorted(shard_files - set(shards)):
        problems.append(f"{SHARDS_DIR}/{name}: orphan shard, not registered in the index")
    for name, shard in sorted(shards.items()):
        if shard.status == "pending":
            if name in by_shard:
                problems.append(f"{SHARDS_DIR}/{name}: pending shard has indexed episodes")
            else:
                warnings.append(
                    f"{SHARDS_DIR}/{name}: pending shard of an unfinished write (safe to delete "
                    "once no writer is running)"
                )
    for name in sorted(set(by_shard) - {n for n, s in shards.items() if s.status == "committed"}):
        problems.append(f"{SHARDS_DIR}/{name}: {len(by_shard[name])} episodes point to an unregistered shard")
    for name, shard in sorted(shards.items()):
        if shard.status == "committed":
            problems += _check_shard(store, shard, by_shard.get(name, []), spec)
    return CheckReport(not problems, problems, warnings, len(records), transitions)


def _check_shard(
    store: EpisodeStore, shard: ShardRecord, records: list[EpisodeRecord], spec: StoreSpec | None
) -> list[str]:
    file = store.shard_path(shard.name)
    where = f"{SHARDS_DIR}/{shard.name}"
    if not file.is_file():
        return [f"{where}: file is missing ({len(records)} episodes lost)"]
    if not records or spec is None:
        return [f"{where}: committed shard without episodes"]
    size = file.stat().st_size
    if size != shard.bytes:
        return [f"{where}: file has {size} bytes, the index recorded {shard.bytes} (truncated or altered)"]
    if file_sha256(file) != shard.sha256:
        return [f"{where}: content differs from its recorded SHA-256 (the file is corrupt)"]
    try:
        with ShardReader(file, spec) as reader:
            return _check_rows(reader, shard, sorted(records, key=lambda r: r.row_offset), where)
    except DataError as e:
        return [f"{where}: {e}"]


def _check_rows(
    reader: ShardReader, shard: ShardRecord, records: list[EpisodeRecord], where: str
) -> list[str]:
    problems: list[str] = []
    rows = reader.num_rows
    if rows != shard.rows:
        problems.append(f"{where}: has {rows} rows, the index recorded {shard.rows}")
    offsets = np.array([r.row_offset for r in records], dtype=np.int64)
    lengths = np.array([r.length for r in records], dtype=np.int64)
    ends = offsets + lengths + 1  # one past each episode's last row
    if offsets[0] != 0 or (offsets[1:] != ends[:-1]).any() or ends[-1] != rows or (lengths < 1).any():
        problems.append(f"{where}: episode row ranges do not tile the shard's {rows} rows exactly")
        return problems
    last = ends - 1
    owner = np.repeat(np.arange(len(records)), lengths + 1)
    indices, dictionary = reader.episode_ids()
    is_last, terminated, truncated = (reader.flag(n) for n in ("is_last", "terminated", "truncated"))
    reward = reader.reward()
    action = reader.action().reshape(rows, -1)
    finite = np.isfinite(reward) & np.isfinite(action).all(axis=1)
    for key, _ in reader.spec.obs_items():
        obs = reader.observation(key).reshape(rows, -1)
        finite &= np.isfinite(obs).all(axis=1)
    expected_last = np.zeros(rows, dtype=bool)
    expected_last[last] = True
    returns = np.add.reduceat(reward.astype(np.float64), offsets)
    bad_rows = {
        "step": reader.step() != np.arange(rows) - np.repeat(offsets, lengths + 1),
        "episode_id": indices != np.repeat(indices[offsets], lengths + 1),
        "is_last": is_last != expected_last,
        "terminated/truncated before the last step": (terminated | truncated)
        & ~np.isin(np.arange(rows), last - 1)
        & ~expected_last,
        "non-finite value": ~finite,
        "final row with nonzero action/reward/flags": expected_last
        & ((action != 0).any(axis=1) | (reward != 0) | terminated | truncated),
    }
    for what, mask in bad_rows.items():
        for e in np.unique(owner[mask]):
            problems.append(
                f"{where}: episode {records[e].episode_id!r}: {what} (rows {offsets[e]}..{last[e]})"
            )
    for e, rec in enumerate(records):
        if dictionary[indices[offsets[e]]] != rec.episode_id:
            problems.append(
                f"{where}: rows {offsets[e]}..{last[e]} belong to "
                f"{dictionary[indices[offsets[e]]]!r}, the index says {rec.episode_id!r}"
            )
        if not np.isclose(returns[e], rec.episode_return, rtol=1e-6, atol=1e-6):
            problems.append(
                f"{where}: episode {rec.episode_id!r}: return {returns[e]} differs from the "
                f"index's {rec.episode_return}"
            )
        if bool(terminated[last[e] - 1]) != rec.terminated:
            problems.append(f"{where}: episode {rec.episode_id!r}: terminated flag differs from the index")
    return problems
