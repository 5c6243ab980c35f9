"""Shard files: immutable, uncompressed Arrow IPC files holding the steps of whole episodes.

Each episode of ``T`` transitions takes ``T + 1`` consecutive rows (the RLDS convention): row ``t``
holds ``o_t, a_t, r_t`` and the flags of step ``t``; the last row holds only ``o_T``, with
``is_last = true`` and zero action, reward and flags. Columns:

=====================  ===========================================  ================================
``episode_id``         dictionary<int32, string>                    owner of the row
``step``               int32                                        ``t``, from 0 to ``T``
``observation``        FixedSizeList<dtype, prod(obs_shape)>        flattened ``o_t`` (the spec has
                                                                    the true shape); dict
                                                                    observations have one column
                                                                    ``observation.<key>`` per key
``action``             FixedSizeList<dtype, prod(act_shape)>        ``a_t``
``reward``             float32                                      ``r_t``
``terminated``         bool                                         step ``t`` ended in a terminal
``truncated``          bool                                         step ``t`` was cut short
``is_last``            bool                                         this row holds only ``o_T``
``cost``               float32                                      ``c_t`` (schema 2; a shard
                                                                    without it reads as 0)
``intervention``       uint8                                        shield layers that acted at
                                                                    ``t`` (schema 2; else 0)
=====================  ===========================================  ================================

The schema metadata carries the store spec (``armfarm.spec``). Files are written once, fsynced, and
never modified; readers memory-map them (:class:`ShardReader`), so loading copies data straight
from the page cache into the caller's arrays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from armfarm.data.errors import DataError
from armfarm.data.schema import SCHEMA_VERSION, ArraySpec, Episode, StoreSpec
from armfarm.durable import fsync_path

SHARD_SUFFIX = ".arrow"
TARGET_SHARD_BYTES = 64 << 20  # bounds the page-cache footprint of one mapped shard while loading
FLAG_COLUMNS = ("terminated", "truncated", "is_last")
# Columns added by schema 2: their Arrow types and what a schema-1 shard, which lacks them, reads as.
SAFETY_COLUMNS = {"cost": (pa.float32(), np.float32), "intervention": (pa.uint8(), np.uint8)}


def obs_column(key: str | None) -> str:
    """Column name of the observation array ``key`` (``None`` for array observations)."""
    return "observation" if key is None else f"observation.{key}"


def _list_type(spec: ArraySpec) -> pa.DataType:
    return pa.list_(pa.from_numpy_dtype(np.dtype(spec.dtype)), spec.size)


def arrow_schema(spec: StoreSpec) -> pa.Schema:
    """The Arrow schema of shards of a store with ``spec``."""
    fields = [pa.field("episode_id", pa.dictionary(pa.int32(), pa.string())), pa.field("step", pa.int32())]
    fields += [pa.field(obs_column(key), _list_type(s)) for key, s in spec.obs_items()]
    fields += [pa.field("action", _list_type(spec.action)), pa.field("reward", pa.float32())]
    fields += [pa.field(name, pa.bool_()) for name in FLAG_COLUMNS]
    fields += [pa.field(name, arrow_type) for name, (arrow_type, _) in SAFETY_COLUMNS.items()]
    metadata = {"armfarm.spec": spec.to_json(), "armfarm.schema_version": str(SCHEMA_VERSION)}
    return pa.schema(fields, metadata=metadata)


def row_bytes(spec: StoreSpec) -> int:
    """Approximate bytes per stored row (used to size shards)."""
    arrays = [s for _, s in spec.obs_items()] + [spec.action]
    return sum(s.size * np.dtype(s.dtype).itemsize for s in arrays) + 4 + 4 + 4 + len(FLAG_COLUMNS) + 4 + 1


def plan_shards(episodes: Sequence[Episode], spec: StoreSpec) -> list[list[Episode]]:
    """Split ``episodes`` into groups of about ``TARGET_SHARD_BYTES``; an episode is never split."""
    per_row, target_bytes = row_bytes(spec), TARGET_SHARD_BYTES
    groups: list[list[Episode]] = []
    size = 0
    for ep in episodes:
        ep_bytes = (ep.length + 1) * per_row
        if not groups or size + ep_bytes > target_bytes:
            groups.append([])
            size = 0
        groups[-1].append(ep)
        size += ep_bytes
    return groups


def _fixed_list(values: np.ndarray, spec: ArraySpec) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), spec.size)


def build_table(episodes: Sequence[Episode], spec: StoreSpec) -> pa.Table:
    """The rows of ``episodes`` (validated against ``spec``), in order, as one Arrow table."""
    lengths = np.array([ep.length for ep in episodes], dtype=np.int64)
    rows_per_episode = lengths + 1
    starts = np.concatenate([[0], np.cumsum(rows_per_episode)[:-1]])
    total = int(rows_per_episode.sum())
    ep_index = np.repeat(np.arange(len(episodes), dtype=np.int32), rows_per_episode)
    ids = pa.array([ep.episode_id for ep in episodes], pa.string())
    columns = {
        "episode_id": pa.DictionaryArray.from_arrays(pa.array(ep_index), ids),
        "step": pa.array((np.arange(total) - np.repeat(starts, rows_per_episode)).astype(np.int32)),
    }
    for key, s in spec.obs_items():
        parts = [
            np.asarray(ep.observations if key is None else ep.observations[key]).reshape(
                ep.length + 1, s.size
            )
            for ep in episodes
        ]
        columns[obs_column(key)] = _fixed_list(np.concatenate(parts).astype(s.dtype, copy=False), spec=s)
    action = np.zeros((total, spec.action.size), dtype=spec.action.dtype)
    reward = np.zeros(total, dtype=np.float32)
    flags = {name: np.zeros(total, dtype=bool) for name in FLAG_COLUMNS}
    safety = {name: np.zeros(total, dtype=dtype) for name, (_, dtype) in SAFETY_COLUMNS.items()}
    for ep, start, length in zip(episodes, starts, lengths, strict=True):
        action[start : start + length] = ep.actions.reshape(length, -1)
        reward[start : start + length] = ep.rewards
        safety["cost"][start : start + length] = ep.step_costs
        safety["intervention"][start : start + length] = ep.step_interventions
        flags["terminated"][start : start + length] = ep.terminated
        flags["truncated"][start : start + length] = ep.truncated
        flags["is_last"][start + length] = True
    columns["action"] = _fixed_list(action, spec.action)
    columns["reward"] = pa.array(reward)
    columns.update({name: pa.array(a) for name, a in flags.items()})
    columns.update({name: pa.array(a) for name, a in safety.items()})
    return pa.table(columns, schema=arrow_schema(spec))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_shard(path: Path, table: pa.Table) -> tuple[int, str]:
    """Write ``table`` as an uncompressed Arrow IPC file at ``path`` and fsync it.

    Returns the file's size and SHA-256 (recorded in the index so corruption can be detected).
    """
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    fsync_path(path)
    return path.stat().st_size, file_sha256(path)


class ShardReader:
    """A memory-mapped shard; column accessors return NumPy arrays over the mapping where possible.

    Views stay valid while referenced; :meth:`close` drops the reader's references so the mapping
    is released as soon as the caller's views are gone. Usable as a context manager.

    Raises:
        DataError: if the file is missing, is not an Arrow IPC file, or does not match ``spec``.
    """

    def __init__(self, path: Path, spec: StoreSpec):
        self.path = Path(path)
        self.spec = spec
        try:
            self._source = pa.memory_map(str(self.path), "r")
            self._table = pa.ipc.open_file(self._source).read_all()
        except (OSError, pa.ArrowException) as e:
            raise DataError(
                f"cannot read shard ({e})",
                path=self.path,
                hint="the file is missing or damaged; check the store with armfarm.data.check_store",
            ) from e
        expected = arrow_schema(spec)
        for f in expected:
            absent = self._table.schema.get_field_index(f.name) < 0
            if absent and f.name in SAFETY_COLUMNS:
                continue  # a schema-1 shard: reads as zero cost and no intervention
            if absent or self._table.schema.field(f.name).type != f.type:
                raise DataError(
                    f"column is missing or has the wrong type (expected {f.type})",
                    path=self.path,
                    field=f.name,
                    hint="the shard does not belong to this store or is damaged; check it with armfarm.data.check_store",
                )
        self._cache: dict[str, np.ndarray] = {}

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def num_rows(self) -> int:
        return self._table.num_rows

    def _array(self, name: str) -> pa.Array:
        column = self._table.column(name)
        return column.chunk(0) if column.num_chunks == 1 else pa.concat_arrays(column.chunks)

    def _column(self, name: str, spec: ArraySpec | None = None) -> np.ndarray:
        if name not in self._cache:
            array = self._array(name)
            if spec is None:
                self._cache[name] = array.to_numpy(zero_copy_only=False)
            else:
                values = array.flatten().to_numpy(zero_copy_only=False)
                self._cache[name] = values.reshape((len(array), *spec.shape))
        return self._cache[name]

    def observation(self, key: str | None = None) -> np.ndarray:
        """``(rows, *obs_shape)`` observations of key ``key`` (``None`` for array observations)."""
        spec = self.spec.observation if key is None else self.spec.observation[key]
        return self._column(obs_column(key), spec)

    def action(self) -> np.ndarray:
        return self._column("action", self.spec.action)

    def reward(self) -> np.ndarray:
        return self._column("reward")

    def cost(self) -> np.ndarray:
        """Per-row costs (zeros for a shard written before schema 2)."""
        return self._safety("cost")

    def intervention(self) -> np.ndarray:
        """Per-row shield intervention flags (zeros for a shard written before schema 2)."""
        return self._safety("intervention")

    def _safety(self, name: str) -> np.ndarray:
        if self._table.schema.get_field_index(name) < 0:
            return np.zeros(self.num_rows, SAFETY_COLUMNS[name][1])
        return self._column(name)

    def flag(self, name: str) -> np.ndarray:
        """One of the bool columns ``terminated``, ``truncated``, ``is_last`` (a copy)."""
        return self._column(name)

    def step(self) -> np.ndarray:
        return self._column("step")

    def episode_ids(self) -> tuple[np.ndarray, list[str]]:
        """``(indices, dictionary)``: row ``i`` belongs to episode ``dictionary[indices[i]]``."""
        array = self._array("episode_id")
        return array.indices.to_numpy(zero_copy_only=False), array.dictionary.to_pylist()

    def close(self) -> None:
        self._cache.clear()
        self._table = None
        self._source.close()
