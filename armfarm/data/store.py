"""The episode store: immutable Arrow shards plus an index, safe for many writer processes.

On disk (see ``docs/design.md``)::

    STORE/
      store.json           {"format": "armfarm-episode-store", "schema_version": 2, "created_at": ...,
                            "index": {"backend": "sqlite"}}
      index.sqlite         WAL mode; tables meta, spec, shards, episodes
      shards/<uuid>.arrow  immutable Arrow IPC files (see armfarm.data.shards)
      tmp/                 files being written; never read

The index is SQLite by default, or a schema in a PostgreSQL database (``index_url``; see
:mod:`armfarm.data.index`), in which case ``index.sqlite`` is absent and ``store.json`` records
where the index is.

A write puts each new shard in ``tmp/`` and fsyncs it, registers it as *pending* in the ``shards``
table, renames it into ``shards/`` and fsyncs the directory, then inserts the episode rows and marks
the shard *committed* in one index transaction. Only indexed episodes exist, so a crash at any
point leaves whole episodes or nothing; the leftovers of an interrupted write (a file in ``tmp/``, or
a pending shard) are harmless, ``check_store`` reports them as warnings, and
:meth:`EpisodeStore.collect_garbage` deletes those older than an hour. The index serialises
writers across processes; a snapshot (the list of episode rows at one moment) stays readable
forever, because shards never change once renamed.
"""

from __future__ import annotations

import errno
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from armfarm.data.errors import DataError
from armfarm.data.index import (
    INDEX_FILE,
    SQLITE,
    Cursor,
    Index,
    IndexLocation,
    open_index,
    same_database,
)
from armfarm.data.schema import SCHEMA_VERSION, Episode, StoreSpec, utc_now_iso
from armfarm.data.shards import (
    SHARD_SUFFIX,
    ShardReader,
    build_table,
    plan_shards,
    write_shard,
)
from armfarm.durable import fsync_path

STORE_FORMAT = "armfarm-episode-store"
STORE_FILE = "store.json"
SHARDS_DIR = "shards"
TMP_DIR = "tmp"
DEFAULT_GARBAGE_AGE_S = 3600.0  # no write takes an hour between staging a shard and committing it
_SQL_CHUNK = 500  # ids per "IN (...)" query, below SQLite's parameter limit

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spec (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shards (
    name TEXT PRIMARY KEY,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'committed')),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    seq {serial_key},
    episode_id TEXT NOT NULL UNIQUE,
    shard TEXT NOT NULL REFERENCES shards(name),
    row_offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    "return" {float8} NOT NULL,
    terminated INTEGER NOT NULL,
    collector_id TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    seed TEXT,
    created_at TEXT NOT NULL,
    cost_return {float8} NOT NULL DEFAULT 0,
    interventions INTEGER NOT NULL DEFAULT 0,
    end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS episodes_by_shard ON episodes (shard, row_offset);
"""
# ``seed`` is TEXT because Gymnasium/Minari seeds may exceed signed 64-bit integers. The schema is a
# template for Index.ddl (engine-specific spellings of the serial key and of 64-bit floats).

_INSERT_COLUMNS = (
    'episode_id, shard, row_offset, length, "return", terminated, collector_id, policy_id, env_id, seed, created_at, '
    "cost_return, interventions, end_reason"
)
# Schema 1 -> 2: the episode columns a schema-1 index lacks (what old episodes read as: no cost, no
# intervention, no end reason). Shards are immutable, so schema-1 shards stay and read as zero cost.
_MIGRATION_2 = (
    ("cost_return", "{float8} NOT NULL DEFAULT 0"),
    ("interventions", "INTEGER NOT NULL DEFAULT 0"),
    ("end_reason", "TEXT NOT NULL DEFAULT ''"),
)
_RECORD_COLUMNS = _INSERT_COLUMNS + ", seq"
_KNOWN_ENTRIES = {
    STORE_FILE,
    INDEX_FILE,
    f"{INDEX_FILE}-wal",
    f"{INDEX_FILE}-shm",
    f"{INDEX_FILE}-journal",
    SHARDS_DIR,
    TMP_DIR,
}


@dataclass(frozen=True)
class EpisodeRecord:
    """One row of the episode index: where an episode lives and what it is.

    The episode occupies rows ``row_offset .. row_offset + length`` (inclusive, ``length + 1`` rows)
    of shard file ``shards/<shard>``. ``seq`` orders episodes by commit.
    """

    episode_id: str
    shard: str
    row_offset: int
    length: int
    episode_return: float
    terminated: bool
    collector_id: str
    policy_id: str
    env_id: str
    seed: int | None
    created_at: str
    cost_return: float
    interventions: int
    end_reason: str
    seq: int

    @classmethod
    def from_row(cls, row: Sequence) -> EpisodeRecord:
        (episode_id, shard, offset, length, ret, terminated, collector, policy, env, seed, created,
         cost, interventions, end_reason, seq) = row
        return cls(
            episode_id,
            shard,
            int(offset),
            int(length),
            float(ret),
            bool(terminated),
            collector,
            policy,
            env,
            None if seed is None else int(seed),
            created,
            float(cost),
            int(interventions),
            end_reason,
            int(seq),
        )


@dataclass(frozen=True)
class ShardRecord:
    """One row of the shard table. ``status`` is ``"pending"`` until its episodes are committed."""

    name: str
    rows: int
    bytes: int
    sha256: str
    status: str
    created_at: str


_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}  # the disk, not the data: a writer may retry


class _DuplicateRace(Exception):
    """Another writer committed some of our episode ids after we checked; carries those ids."""

    def __init__(self, ids: set[str]):
        super().__init__(sorted(ids))
        self.ids = ids


class EpisodeStore:
    """A directory of episodes that many processes can append to and read concurrently.

    Args:
        path: the store directory.
        create: create the store if it does not exist (an existing store is simply opened).
        spec: bind this spec now instead of on the first write (e.g. ``StoreSpec.from_gymnasium``,
            which also records action bounds). An existing store must have the same layout.
        index_url: where a new store keeps its index: ``"sqlite"`` (default) or a
            ``postgresql://`` URL (see :mod:`armfarm.data.index`). Opening an existing store reads
            the location from ``store.json``; a URL given then must name the same database (it
            may add the password).

    Raises:
        DataError: ``path`` is not a store (or cannot become one), ``spec`` conflicts with it, or
            ``index_url`` names another index.

    The object holds no open handles (each call runs its own index transaction on a connection
    from a per-process pool), so it can be pickled and used from any process or thread. ``store.index`` is its
    :class:`~armfarm.data.index.Index`; other modules may keep their own tables there (the fleet
    registry does), so that they live and move with the store.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        create: bool = False,
        spec: StoreSpec | None = None,
        index_url: str | None = None,
    ):
        self.path = Path(path)
        if create:
            self._create(index_url)
        location, created_at, version = self._check_layout()
        if not same_database(location, index_url):
            raise DataError(
                f"keeps its index in {location.describe(self.path)}, not in the index URL given",
                path=self.path,
                field="index_url",
                hint="open the store without index_url, or with the URL of its own index",
            )
        self.index: Index = open_index(self.path, location, created_at, None if index_url == SQLITE else index_url)
        if version < SCHEMA_VERSION:
            self._migrate(version)
        if spec is not None:
            self.bind_spec(spec)

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r})"

    # -- opening --------------------------------------------------------------------------------

    def _create(self, index_url: str | None) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise DataError("exists and is not a directory", path=self.path, hint="choose another store path")
        if (self.path / STORE_FILE).exists():
            return
        location = IndexLocation.parse(index_url)
        created_at = utc_now_iso()
        if self.path.is_dir():
            unknown = sorted(set(os.listdir(self.path)) - _KNOWN_ENTRIES)
            if unknown:
                raise DataError(
                    f"is a non-empty directory that is not an episode store (contains {unknown[:3]})",
                    path=self.path,
                    hint="create the store in an empty or new directory",
                )
        (self.path / SHARDS_DIR).mkdir(parents=True, exist_ok=True)
        (self.path / TMP_DIR).mkdir(exist_ok=True)
        index = open_index(self.path, location, created_at, index_url)
        index.create(_SCHEMA_SQL)
        with index.transaction(write=True) as cur:
            cur.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                [("schema_version", str(SCHEMA_VERSION)), ("provenance", "{}"), ("created_at", created_at)],
            )
        # store.json last and atomically (link fails if another creator won): its presence means
        # the index is ready.
        header = {
            "format": STORE_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "created_at": created_at,
            "index": location.to_json(),
        }
        tmp = self.path / TMP_DIR / f"{uuid.uuid4().hex}.json"
        tmp.write_text(json.dumps(header, indent=2) + "\n")
        fsync_path(tmp)
        try:
            os.link(tmp, self.path / STORE_FILE)
        except FileExistsError:
            index.drop()  # another creator won; its index is the store's (a shared SQLite file stays)
        finally:
            tmp.unlink()
        fsync_path(self.path)

    def _check_layout(self) -> tuple[IndexLocation, str, int]:
        """Check the header; return where the index is, when the store was created and its schema version."""
        header_path = self.path / STORE_FILE
        if not self.path.exists():
            raise DataError(
                "no episode store here",
                path=self.path,
                hint="check the path, or create a store with EpisodeStore(path, create=True)",
            )
        if not header_path.is_file():
            raise DataError(
                f"is not an armfarm episode store (no {STORE_FILE})",
                path=self.path,
                hint="point at the directory that contains store.json, or create a store with create=True",
            )
        try:
            header = json.loads(header_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"unreadable ({e})", path=header_path, hint="the store header is damaged") from e
        if not isinstance(header, dict) or header.get("format") != STORE_FORMAT:
            raise DataError(
                f"format is not {STORE_FORMAT!r}",
                path=header_path,
                field="format",
                hint="this directory is not an armfarm episode store",
            )
        version = header.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
            raise DataError(
                f"schema version {version!r} is not supported (this armfarm reads up to {SCHEMA_VERSION})",
                path=header_path,
                field="schema_version",
                hint="upgrade armfarm to read this store",
            )
        location = IndexLocation.from_json(header.get("index"), header_path)
        if location.backend == SQLITE and not (self.path / INDEX_FILE).is_file():
            raise DataError(
                "the store has no index", path=self.path / INDEX_FILE, hint="the store is damaged; restore it"
            )
        return location, str(header.get("created_at")), version

    def _migrate(self, version: int) -> None:
        """Upgrade a store written with schema ``version`` to :data:`SCHEMA_VERSION`, in place.

        Each step is idempotent (concurrent openers may both run it): columns are added with their
        defaults, then the index's and the header's version are raised, the header atomically.
        """
        try:
            for column, declaration in _MIGRATION_2:
                self.index.ensure_column("episodes", column, self.index.ddl(declaration))
            with self.index.transaction(write=True) as con:
                con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            header_path = self.path / STORE_FILE
            header = json.loads(header_path.read_text())
            header["schema_version"] = SCHEMA_VERSION
            tmp = self.path / TMP_DIR / f"{uuid.uuid4().hex}.json"
            tmp.write_text(json.dumps(header, indent=2) + "\n")
            fsync_path(tmp)
            os.replace(tmp, header_path)
            fsync_path(self.path)
        except OSError as e:
            raise DataError(
                f"cannot upgrade the store from schema {version} to {SCHEMA_VERSION} ({e})",
                path=self.path,
                hint="open it once with write access to the store directory; nothing was lost",
            ) from e

    # -- spec -----------------------------------------------------------------------------------

    @property
    def spec(self) -> StoreSpec | None:
        """The store's spec, or ``None`` before the first write."""
        with self.index.transaction() as con:
            row = con.execute("SELECT json FROM spec").fetchone()
        return None if row is None else StoreSpec.from_json(row[0])

    def bind_spec(self, spec: StoreSpec) -> StoreSpec:
        """Make ``spec`` the store's spec if it has none; else check the layouts agree.

        Bounds ``spec`` has and the store lacks are added. Returns the store's spec.

        Raises:
            DataError: the layouts (or bounds both have) differ; the message names the field.
        """
        with self.index.transaction(write=True) as con:
            row = con.execute("SELECT json FROM spec").fetchone()
            if row is None:
                con.execute("INSERT INTO spec (id, json) VALUES (1, ?)", (spec.to_json(),))
                return spec
            stored = StoreSpec.from_json(row[0])
            difference = stored.layout_difference(spec)
            if difference is not None:
                name, what = difference
                raise DataError(
                    what,
                    path=self.path,
                    field=name,
                    hint="all episodes of a store share one spec; write these episodes to another store",
                )
            merged = stored.with_bounds_from(spec, path=self.path)
            if merged != stored:
                con.execute("UPDATE spec SET json = ? WHERE id = 1", (merged.to_json(),))
            return merged

    def release_spec(self, cur) -> bool:
        """Forget the store's spec if it holds no episode, inside the caller's write transaction ``cur``
        (so a bad binding can be corrected before data arrives); return whether it was forgotten."""
        if cur.execute("SELECT 1 FROM episodes LIMIT 1").fetchone() is not None:
            return False
        cur.execute("DELETE FROM spec")
        return True

    # -- writing --------------------------------------------------------------------------------

    def write(
        self, episodes: Iterable[Episode], on_duplicate: Literal["error", "skip"] = "error"
    ) -> list[str]:
        """Validate and durably append ``episodes``; return the ids written, in order.

        Everything is validated before anything is written, and all the episodes of one call are
        committed in one transaction: after a crash either all of them exist or none do.

        Args:
            episodes: the episodes; the first write to a store binds its spec.
            on_duplicate: ``"error"`` raises if an id is already stored (or repeats in this call);
                ``"skip"`` silently drops those episodes, which makes writes idempotent.

        Raises:
            DataError: invalid episode, spec mismatch, or (with ``"error"``) a duplicate id.
        """
        if on_duplicate not in ("error", "skip"):
            raise DataError(
                f"must be 'error' or 'skip', got {on_duplicate!r}", field="on_duplicate", hint="fix the call"
            )
        episodes = list(episodes)
        if not episodes:
            return []
        spec = self.spec
        reference = spec  # the store's spec, else the first episode's layout
        for ep in episodes:
            if not isinstance(ep, Episode):
                raise DataError(
                    f"expected an Episode, got {type(ep).__name__}",
                    path=self.path,
                    field="episodes",
                    hint="wrap the arrays in armfarm.data.Episode",
                )
            try:
                ep.validate(reference)
            except DataError as e:
                raise DataError(
                    f"episode {ep.episode_id!r}: {e.message}", path=self.path, field=e.field, hint=e.hint
                ) from None
            if reference is None:
                reference = StoreSpec.from_episode(ep)
        unique: dict[str, Episode] = {}
        for ep in episodes:
            if ep.episode_id in unique and on_duplicate == "error":
                raise _duplicate_error(self.path, {ep.episode_id}, "appears twice in this write")
            unique.setdefault(ep.episode_id, ep)
        spec = self.bind_spec(reference)
        todo = list(unique.values())
        while True:
            existing = self._existing_ids([ep.episode_id for ep in todo])
            if existing and on_duplicate == "error":
                raise _duplicate_error(self.path, existing, "is already in the store")
            todo = [ep for ep in todo if ep.episode_id not in existing]
            if not todo:
                return []
            try:
                self._commit(todo, spec)
            except _DuplicateRace as race:
                if on_duplicate == "error":
                    raise _duplicate_error(self.path, race.ids, "was written concurrently") from None
                continue  # another writer stored some of them meanwhile: drop those and retry
            return [ep.episode_id for ep in todo]

    def _existing_ids(self, ids: Sequence[str]) -> set[str]:
        with self.index.transaction() as con:
            return _stored_ids(con, ids)

    def _commit(self, episodes: list[Episode], spec: StoreSpec) -> None:
        """Write shards, register them, rename them in, and index the episodes atomically."""
        tmp_dir, shard_dir = self.path / TMP_DIR, self.path / SHARDS_DIR
        staged: list[tuple[str, int, int, str]] = []  # (name, rows, bytes, sha256)
        rows: list[tuple] = []
        try:
            for group in plan_shards(episodes, spec):
                name = uuid.uuid4().hex + SHARD_SUFFIX
                table = build_table(group, spec)
                try:
                    size, digest = write_shard(tmp_dir / name, table)
                except BaseException:  # a partial shard (a full disk, a kill) never stays in tmp/
                    (tmp_dir / name).unlink(missing_ok=True)
                    raise
                staged.append((name, table.num_rows, size, digest))
                offset = 0
                for ep in group:
                    rows.append(
                        (
                            ep.episode_id,
                            name,
                            offset,
                            ep.length,
                            ep.episode_return,
                            int(bool(ep.terminated[-1])),
                            ep.collector_id,
                            ep.policy_id,
                            ep.env_id,
                            None if ep.seed is None else str(ep.seed),
                            ep.created_at,
                            ep.cost_return,
                            ep.intervention_count,
                            ep.end_reason,
                        )
                    )
                    offset += ep.length + 1
                del table
            now = utc_now_iso()
            with self.index.transaction(write=True) as con:
                con.executemany(
                    "INSERT INTO shards (name, rows, bytes, sha256, status, created_at) "
                    "VALUES (?, ?, ?, ?, 'pending', ?)",
                    [(*shard, now) for shard in staged],
                )
            for name, *_ in staged:
                os.rename(tmp_dir / name, shard_dir / name)
            fsync_path(shard_dir)
            with self.index.transaction(write=True) as con:
                raced = _stored_ids(con, [r[0] for r in rows])
                if raced:
                    raise _DuplicateRace(raced)
                still_pending = sum(
                    con.execute("SELECT COUNT(*) FROM shards WHERE name = ? AND status = 'pending'", (name,)).fetchone()[0]
                    for name, *_ in staged
                )
                if still_pending != len(staged):  # collect_garbage took this write for abandoned
                    raise DataError(
                        "a shard of this write was removed as abandoned before it was committed; nothing "
                        "was written, retry",
                        path=self.path,
                    )
                con.executemany(
                    f"INSERT INTO episodes ({_INSERT_COLUMNS}) VALUES ({', '.join('?' * len(rows[0]))})",
                    rows,
                )
                con.executemany(
                    "UPDATE shards SET status = 'committed' WHERE name = ?", [(name,) for name, *_ in staged]
                )
        except BaseException as exc:
            self._discard(staged)
            if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
                raise DataError(f"cannot write: {os.strerror(exc.errno)}; nothing was written, retry once there is "
                                "space (or the filesystem is writable)", path=self.path) from exc
            raise

    def _discard(self, staged: list[tuple[str, int, int, str]]) -> None:
        """Best-effort cleanup of a failed write (anything left over is reported by check_store).

        Files go first and pending rows second, so an interruption leaves at worst a pending row
        (a warning), never an unregistered file. Committed shards are never touched.
        """
        names = [name for name, *_ in staged]
        try:
            with self.index.transaction() as con:
                committed = {
                    name
                    for name in names
                    if con.execute(
                        "SELECT 1 FROM shards WHERE name = ? AND status = 'committed'", (name,)
                    ).fetchone()
                }
            for name in set(names) - committed:
                for directory in (TMP_DIR, SHARDS_DIR):
                    (self.path / directory / name).unlink(missing_ok=True)
            with self.index.transaction(write=True) as con:
                con.executemany(
                    "DELETE FROM shards WHERE name = ? AND status = 'pending'", [(n,) for n in names]
                )
        except (DataError, OSError):
            pass

    # -- reading --------------------------------------------------------------------------------

    def records(
        self, collector_id: str | None = None, policy_id: str | None = None, env_id: str | None = None
    ) -> list[EpisodeRecord]:
        """Index rows in commit order, optionally only those matching the given metadata."""
        with self.index.transaction() as con:
            return _select_records(con, collector_id=collector_id, policy_id=policy_id, env_id=env_id)

    def records_page(self, prefix: str = "", after: int = 0, limit: int = 1000) -> list[EpisodeRecord]:
        """At most ``limit`` index rows whose episode id starts with ``prefix``, in commit order from the
        one after commit number ``after`` (an :attr:`EpisodeRecord.seq`; 0: from the start). Page on with
        the last row's ``seq``."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        query = f"SELECT {_RECORD_COLUMNS} FROM episodes WHERE seq > ?"
        params: list = [int(after)]
        if prefix:
            query += " AND substr(episode_id, 1, ?) = ?"
            params += [len(prefix), prefix]
        with self.index.transaction() as con:
            rows = con.execute(query + " ORDER BY seq LIMIT ?", [*params, int(limit)])
            return [EpisodeRecord.from_row(r) for r in rows]

    def snapshot(self) -> list[EpisodeRecord]:
        """All episodes committed at this moment (one consistent read), in commit order.

        The records stay valid and readable however much is written afterwards.
        """
        return self.records()

    def shards(self) -> list[ShardRecord]:
        """All registered shards (pending ones belong to unfinished or interrupted writes)."""
        with self.index.transaction() as con:
            return _select_shards(con)

    def index_snapshot(self) -> tuple[list[EpisodeRecord], list[ShardRecord]]:
        """Episodes and shards read at one moment (consistent with each other, for integrity checks)."""
        with self.index.transaction() as con:
            return _select_records(con), _select_shards(con)

    def record(self, episode_id: str) -> EpisodeRecord:
        """The index row of ``episode_id``; raises DataError if it is not stored."""
        with self.index.transaction() as con:
            row = con.execute(
                f"SELECT {_RECORD_COLUMNS} FROM episodes WHERE episode_id = ?", (episode_id,)
            ).fetchone()
        if row is None:
            raise DataError(
                f"no episode {episode_id!r}",
                path=self.path,
                field="episode_id",
                hint="list the stored ids with EpisodeStore.records()",
            )
        return EpisodeRecord.from_row(row)

    def shard_path(self, shard: str) -> Path:
        """The file of shard ``shard`` (as named in :class:`EpisodeRecord`)."""
        return self.path / SHARDS_DIR / shard

    def read_episode(self, episode_id: str) -> Episode:
        """Load one episode (arrays in their stored dtypes and shapes)."""
        return next(self.iter_episodes([self.record(episode_id)]))

    def iter_episodes(self, records: Iterable[EpisodeRecord] | None = None) -> Iterator[Episode]:
        """Yield the episodes of ``records`` (default: a snapshot of the whole store) in order."""
        spec = self.spec
        if records is None:
            records = self.snapshot()
        reader: ShardReader | None = None
        try:
            for rec in records:
                if reader is None or reader.path != self.shard_path(rec.shard):
                    if reader is not None:
                        reader.close()
                    reader = ShardReader(self.shard_path(rec.shard), spec)
                yield _episode_from_rows(reader, rec, spec)
        finally:
            if reader is not None:
                reader.close()

    # -- metadata -------------------------------------------------------------------------------

    @property
    def provenance(self) -> dict:
        """Store-level provenance (free-form JSON, merged by :meth:`set_provenance`)."""
        with self.index.transaction() as con:
            return json.loads(con.execute("SELECT value FROM meta WHERE key = 'provenance'").fetchone()[0])

    def set_provenance(self, updates: dict) -> dict:
        """Merge ``updates`` (top-level keys replace) into the provenance; return the result."""
        try:
            json.dumps(updates)
        except (TypeError, ValueError) as e:
            raise DataError(
                f"is not JSON-serialisable ({e})",
                path=self.path,
                field="provenance",
                hint="pass plain dicts, lists, strings and numbers",
            ) from e
        with self.index.transaction(write=True) as con:
            merged = json.loads(con.execute("SELECT value FROM meta WHERE key = 'provenance'").fetchone()[0])
            merged.update(updates)
            con.execute("UPDATE meta SET value = ? WHERE key = 'provenance'", (json.dumps(merged),))
        return merged

    @property
    def num_episodes(self) -> int:
        with self.index.transaction() as con:
            return int(con.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])

    @property
    def num_transitions(self) -> int:
        with self.index.transaction() as con:
            return int(con.execute("SELECT COALESCE(SUM(length), 0) FROM episodes").fetchone()[0])

    def info(self) -> dict[str, Any]:
        """A JSON-able summary, read in one consistent snapshot.

        Keys: ``path``, ``schema_version``, ``created_at``, ``episodes``, ``transitions``,
        ``shards``, ``spaces`` (the spec as a dict, or None), ``returns``, ``costs`` (episode cost
        returns) and ``lengths`` (``mean``/``std``/``min``/``max``; None when empty), ``safety``
        (episodes with any cost, shield interventions, and counts of ``end_reasons``), ``provenance``,
        episode counts by ``collectors``, ``policies`` and ``envs``, and by ``nodes``: the machine named
        after the ``@`` of a collector id ``NAME@NODE`` (Ray collectors record theirs so).
        """
        with self.index.transaction() as con:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            spec_row = con.execute("SELECT json FROM spec").fetchone()
            stats = np.array(
                con.execute('SELECT "return", length, cost_return, interventions FROM episodes').fetchall(),
                dtype=np.float64,
            ).reshape(-1, 4)
            end_reasons = dict(
                con.execute(
                    "SELECT end_reason, COUNT(*) FROM episodes WHERE end_reason <> '' GROUP BY end_reason"
                ).fetchall()
            )
            shards = con.execute("SELECT COUNT(*) FROM shards WHERE status = 'committed'").fetchone()[0]
            counts = {
                key: dict(
                    con.execute(f"SELECT {column}, COUNT(*) FROM episodes GROUP BY {column}").fetchall()
                )
                for key, column in (
                    ("collectors", "collector_id"),
                    ("policies", "policy_id"),
                    ("envs", "env_id"),
                )
            }
        returns, lengths, costs, interventions = stats.T
        return {
            "path": str(self.path),
            "schema_version": int(meta["schema_version"]),
            "created_at": meta["created_at"],
            "episodes": len(returns),
            "transitions": int(lengths.sum()),
            "shards": int(shards),
            "spaces": None if spec_row is None else StoreSpec.from_json(spec_row[0]).to_dict(),
            "returns": _summary(returns),
            "lengths": None
            if not len(lengths)
            else {k: v for k, v in _summary(lengths).items() if k != "std"},
            "costs": _summary(costs),
            "safety": {
                "episodes_with_cost": int(np.count_nonzero(costs)),
                "interventions": int(interventions.sum()),
                "end_reasons": {k: int(v) for k, v in end_reasons.items()},
            },
            "provenance": json.loads(meta["provenance"]),
            **counts,
            "nodes": _nodes(counts["collectors"]),
        }


    def collect_garbage(self, older_than_s: float = DEFAULT_GARBAGE_AGE_S, dry_run: bool = False) -> list[str]:
        """Delete the leftovers of interrupted writes that are older than ``older_than_s`` seconds: files
        in ``tmp/`` and shards still *pending* (their index row first, then the file). Committed shards
        are never touched. Returns the removed paths, relative to the store (with ``dry_run``: the
        paths that would be removed).

        Safe while others write: a write still running after ``older_than_s`` (a paused process) finds
        its pending row gone when it commits, and fails without acknowledging anything.
        """
        now = datetime.now(UTC)

        def stale(when: datetime | None) -> bool:
            return when is None or (now - when).total_seconds() >= older_than_s

        removed = []
        tmp_dir = self.path / TMP_DIR
        for file in sorted(tmp_dir.iterdir()) if tmp_dir.is_dir() else []:
            try:
                mtime = datetime.fromtimestamp(file.stat().st_mtime, UTC)
            except FileNotFoundError:
                continue
            if file.is_file() and stale(mtime):
                if not dry_run:
                    file.unlink(missing_ok=True)
                removed.append(f"{TMP_DIR}/{file.name}")
        for shard in self.shards():
            if shard.status != "pending" or not stale(_parse_time(shard.created_at)):
                continue
            if not dry_run:
                with self.index.transaction(write=True) as con:
                    deleted = con.execute(
                        "DELETE FROM shards WHERE name = ? AND status = 'pending'", (shard.name,)
                    ).rowcount
                if not deleted:
                    continue
                for directory in (SHARDS_DIR, TMP_DIR):
                    (self.path / directory / shard.name).unlink(missing_ok=True)
                fsync_path(self.path / SHARDS_DIR)
            removed.append(f"{SHARDS_DIR}/{shard.name}")
        return removed


def _parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _select_records(con: Cursor, **filters: str | None) -> list[EpisodeRecord]:
    """Episode rows in commit order, keeping those whose columns equal the non-None ``filters``."""
    active = {k: v for k, v in filters.items() if v is not None}
    query = f"SELECT {_RECORD_COLUMNS} FROM episodes"
    if active:
        query += " WHERE " + " AND ".join(f"{k} = ?" for k in active)
    return [EpisodeRecord.from_row(r) for r in con.execute(query + " ORDER BY seq", list(active.values()))]


def _select_shards(con: Cursor) -> list[ShardRecord]:
    rows = con.execute("SELECT name, rows, bytes, sha256, status, created_at FROM shards ORDER BY created_at")
    return [ShardRecord(*row) for row in rows]


def _stored_ids(con: Cursor, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are in the index."""
    found: set[str] = set()
    for i in range(0, len(ids), _SQL_CHUNK):
        chunk = ids[i : i + _SQL_CHUNK]
        query = f"SELECT episode_id FROM episodes WHERE episode_id IN ({','.join('?' * len(chunk))})"
        found.update(r[0] for r in con.execute(query, chunk))
    return found


def _summary(x: np.ndarray) -> dict[str, float] | None:
    if not len(x):
        return None
    return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max())}


def _nodes(collectors: dict[str, int]) -> dict[str, int]:
    """Episode counts per node, from collector ids of the form ``NAME@NODE``."""
    nodes: dict[str, int] = {}
    for collector, count in collectors.items():
        if "@" in collector:
            node = collector.rsplit("@", 1)[1]
            nodes[node] = nodes.get(node, 0) + int(count)
    return nodes


def _duplicate_error(path: Path, ids: set[str], what: str) -> DataError:
    shown = ", ".join(repr(i) for i in sorted(ids)[:5]) + (" ..." if len(ids) > 5 else "")
    return DataError(
        f"episode id {shown} {what}",
        path=path,
        field="episode_id",
        hint="episode ids must be unique; pass on_duplicate='skip' to ignore episodes already stored",
    )


def _episode_from_rows(reader: ShardReader, rec: EpisodeRecord, spec: StoreSpec) -> Episode:
    start, stop = rec.row_offset, rec.row_offset + rec.length
    if stop >= reader.num_rows:
        raise DataError(
            f"episode {rec.episode_id!r} needs rows {start}..{stop} but the shard has {reader.num_rows}",
            path=reader.path,
            hint="the store is damaged; check it with armfarm.data.check_store",
        )
    obs: np.ndarray | dict[str, np.ndarray]
    if spec.obs_keys is None:
        obs = reader.observation()[start : stop + 1].copy()
    else:
        obs = {k: reader.observation(k)[start : stop + 1].copy() for k in spec.obs_keys}
    return Episode(
        observations=obs,
        actions=reader.action()[start:stop].copy(),
        rewards=reader.reward()[start:stop].copy(),
        terminated=reader.flag("terminated")[start:stop].copy(),
        truncated=reader.flag("truncated")[start:stop].copy(),
        costs=reader.cost()[start:stop].copy(),
        interventions=reader.intervention()[start:stop].copy(),
        end_reason=rec.end_reason,
        episode_id=rec.episode_id,
        collector_id=rec.collector_id,
        policy_id=rec.policy_id,
        env_id=rec.env_id,
        seed=rec.seed,
        created_at=rec.created_at,
    )
