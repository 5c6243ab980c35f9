"""Where a store's index lives: a SQLite file next to the shards (default) or a PostgreSQL database.

The shards always stay on the filesystem; only the index (episode rows, shard registry, spec,
metadata, and tables other modules keep next to them, like the fleet registry) moves. An index is
named by a URL:

* ``sqlite`` (or nothing): ``STORE/index.sqlite`` in WAL mode, ``synchronous = FULL``;
* ``postgresql://USER@HOST:PORT/DATABASE``: the store's tables live in their own schema
  (``armfarm_<16 hex digits>``), so many stores can share one database. Passwords are never written
  to ``store.json``; libpq reads them from ``PGPASSWORD`` or ``~/.pgpass``, or pass the full URL
  again when opening the store.

Both backends give the store the same semantics: write transactions are serialised (SQLite's
``BEGIN IMMEDIATE``; a transaction-scoped advisory lock per store on PostgreSQL) and read
transactions see one consistent snapshot (``REPEATABLE READ`` on PostgreSQL). SQL is written once,
with ``?`` placeholders and two type names that differ between the engines (see :meth:`Index.ddl`).

Connections are pooled per process (idle ones only, so ``Index`` objects stay picklable): opening
one per transaction is slow on PostgreSQL, and on SQLite closing the last connection checkpoints
the WAL, an fsync-heavy copy, after every transaction. A forked child starts with an empty pool.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from armfarm.data.errors import DataError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
INDEX_FILE = "index.sqlite"
BUSY_TIMEOUT_S = 600.0  # SQLite writers wait this long for the write lock before failing
_SCHEMA_NAME = re.compile(r"^armfarm_[0-9a-f]{16}$")
_POOL_SIZE = 8  # idle connections kept per process and database


@dataclass(frozen=True)
class IndexLocation:
    """Which database holds a store's index; recorded as ``"index"`` in ``store.json``.

    ``url`` and ``schema`` are set for PostgreSQL only; ``url`` never carries a password.
    """

    backend: str = SQLITE
    url: str | None = None
    schema: str | None = None

    @classmethod
    def parse(cls, url: str | None) -> IndexLocation:
        """The location a user names: ``None``/``"sqlite"``, or a ``postgresql://`` URL (new schema)."""
        if url is None or url == SQLITE:
            return cls()
        scheme = urlsplit(url).scheme
        if scheme not in ("postgresql", "postgres"):
            raise DataError(
                f"index URL {_redact(url)!r} is neither 'sqlite' nor a postgresql:// URL",
                field="index_url",
                hint="pass 'sqlite' (the default) or postgresql://USER@HOST:PORT/DATABASE",
            )
        return cls(POSTGRESQL, _redact(url), f"armfarm_{uuid.uuid4().hex[:16]}")

    def to_json(self) -> dict:
        out: dict[str, str] = {"backend": self.backend}
        if self.backend == POSTGRESQL:
            out.update(url=str(self.url), schema=str(self.schema))
        return out

    @classmethod
    def from_json(cls, data: Any, path: Path) -> IndexLocation:
        """Read the ``index`` entry of ``store.json`` (absent in stores older than PostgreSQL support)."""
        if data is None or data == {"backend": SQLITE}:
            return cls()
        if (
            isinstance(data, dict)
            and data.get("backend") == POSTGRESQL
            and set(data) == {"backend", "url", "schema"}
            and isinstance(data["url"], str)
            and isinstance(data["schema"], str)
            and _SCHEMA_NAME.match(data["schema"])
        ):
            return cls(POSTGRESQL, data["url"], data["schema"])
        raise DataError(
            f"unknown index location {data!r}",
            path=path,
            field="index",
            hint="the store header is damaged, or was written by a newer armfarm",
        )

    def describe(self, store_path: Path) -> str:
        """Where the index is, for messages: the SQLite file, or the URL and schema."""
        if self.backend == SQLITE:
            return str(store_path / INDEX_FILE)
        return f"{self.url} (schema {self.schema})"


def _redact(url: str) -> str:
    """``url`` without its password (kept out of store.json and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[1]}"))


class Cursor:
    """What a transaction yields: ``execute(sql, params)`` and ``executemany(sql, rows)``.

    SQL uses ``?`` placeholders on both backends (and so may contain no literal ``?`` or ``%``).
    ``execute`` returns an object with ``fetchone()``, ``fetchall()`` and iteration.
    """

    def __init__(self, con: Any, paramstyle: str):
        self._con = con
        self._pyformat = paramstyle == "pyformat"

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pyformat else sql

    def execute(self, sql: str, params: Sequence = ()) -> Any:
        return self._con.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence]) -> None:
        rows = list(rows)
        if not rows:
            return
        if self._pyformat:
            with self._con.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            self._con.executemany(sql, rows)


class Index(ABC):
    """One store's index database. Holds no open handles, so it pickles across processes."""

    location: IndexLocation

    @abstractmethod
    def ddl(self, template: str) -> str:
        """``template`` with ``{serial_key}`` (an auto-incrementing integer primary key) and
        ``{float8}`` (a 64-bit float column type) replaced by this engine's spelling."""

    @abstractmethod
    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Cursor]:
        """One transaction: serialised with other writers if ``write``, else a consistent snapshot.

        Raises:
            DataError: the database is unreachable or damaged (the message names it).
        """

    @abstractmethod
    def create(self, ddl: str) -> None:
        """Create the database (if needed) and run ``ddl`` (``;``-separated, after :meth:`ddl`)."""

    def ensure_tables(self, ddl: str) -> None:
        """Run ``CREATE TABLE IF NOT EXISTS`` statements (a template, see :meth:`ddl`) in one transaction."""
        with self.transaction(write=True) as cur:
            for statement in self.ddl(ddl).split(";"):
                if statement.strip():
                    cur.execute(statement)

    def ensure_column(self, table: str, column: str, declaration: str) -> None:
        """Add ``column`` to ``table`` (a migration) unless it is there; safe with concurrent callers."""
        with self.transaction(write=True) as cur:
            names = [d[0] for d in cur.execute(f"SELECT * FROM {table} LIMIT 0").description]
            if column not in names:
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    @abstractmethod
    def drop(self) -> None:
        """Remove what :meth:`create` made (used when another process created the store first)."""

    def _error(self, exc: Exception) -> DataError:
        return DataError(
            f"index error ({exc})",
            path=self.describe(),
            hint="the index is unreachable or damaged, or the disk is full",
        )

    @abstractmethod
    def describe(self) -> str:
        """Where the index is, for messages."""


class SqliteIndex(Index):
    """``STORE/index.sqlite``: WAL mode, full fsync on commit.

    ``store_id`` (the store's creation time) tells pooled connections of a store apart from those
    of an earlier store deleted at the same path.
    """

    def __init__(self, store_path: Path, store_id: str):
        self.location = IndexLocation()
        self.file = Path(store_path) / INDEX_FILE
        self.store_id = store_id

    def describe(self) -> str:
        return str(self.file)

    def ddl(self, template: str) -> str:
        return template.format(serial_key="INTEGER PRIMARY KEY AUTOINCREMENT", float8="REAL")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.file, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        con.execute("PRAGMA synchronous = FULL")
        return con

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Cursor]:
        key = (str(self.file), self.store_id)
        con = None
        try:
            con = _take(key) or self._connect()
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            try:
                yield Cursor(con, "qmark")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise self._error(e) from e
        finally:
            if con is not None:
                _give_back(key, con, healthy=not con.in_transaction)

    def create(self, ddl: str) -> None:
        con = self._connect()
        try:
            self._enable_wal(con)
        finally:
            con.close()
        self.ensure_tables(ddl)

    def _enable_wal(self, con: sqlite3.Connection) -> None:
        """Switch the file to WAL mode, waiting out concurrent creators.

        Changing the journal mode needs an exclusive lock, and SQLite may report "database is
        locked" at once, without consulting the busy timeout, while another creator of the same
        store is mid-transaction; so this retries with backoff until ``BUSY_TIMEOUT_S``.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.001
        while True:
            try:
                (mode,) = con.execute("PRAGMA journal_mode=WAL").fetchone()
            except sqlite3.OperationalError as e:
                if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                    raise self._error(e) from e
            else:
                if str(mode).lower() == "wal":
                    return
                if time.monotonic() > deadline:
                    raise self._error(RuntimeError(f"cannot switch the index to WAL mode (it stays {mode!r})"))
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def drop(self) -> None:
        """Nothing to remove: concurrent creators of a store share its one SQLite file."""


class PostgresIndex(Index):
    """A schema in a PostgreSQL database, reached with psycopg 3; connections are pooled per process."""

    def __init__(self, location: IndexLocation, url: str | None = None):
        self.location = location
        self._url = url or str(location.url)  # may carry a password; never persisted
        self._lock_key = int.from_bytes(hashlib.sha256(str(location.schema).encode()).digest()[:8], "big", signed=True)

    def describe(self) -> str:
        return f"{self.location.url} (schema {self.location.schema})"

    def ddl(self, template: str) -> str:
        return template.format(serial_key="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", float8="DOUBLE PRECISION")

    def _connect(self, schema: bool = True):
        import psycopg

        con = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        if schema:
            con.execute(f'SET search_path TO "{self.location.schema}"')
        return con

    def _begin(self, con, write: bool) -> None:
        if write:
            con.execute("BEGIN")
            con.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
        else:
            con.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Cursor]:
        import psycopg

        key = (self._url, self.location.schema)
        con = None
        try:
            con = _take(key)
            if con is not None:
                try:
                    self._begin(con, write)
                except psycopg.OperationalError:  # the server dropped this idle connection (a restart)
                    con.close()
                    con = None
            if con is None:
                con = self._connect()
                self._begin(con, write)
            try:
                yield Cursor(con, "pyformat")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except psycopg.Error as e:
            raise self._error(e) from e
        finally:
            if con is not None:
                healthy = not con.closed and con.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                _give_back(key, con, healthy)

    def create(self, ddl: str) -> None:
        import psycopg

        try:
            with self._connect(schema=False) as con:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.location.schema}"')
        except psycopg.Error as e:
            raise self._error(e) from e
        self.ensure_tables(ddl)

    def drop(self) -> None:
        import psycopg

        try:
            with self._connect(schema=False) as con:
                con.execute(f'DROP SCHEMA IF EXISTS "{self.location.schema}" CASCADE')
        except psycopg.Error:
            pass  # best effort: an empty schema left behind harms nothing


_POOLS: dict[tuple, list] = {}  # database key -> idle connections of this process
_POOLS_LOCK = threading.Lock()
_INHERITED: list = []


def _take(key: tuple):
    """An idle pooled connection to the database ``key``, or None."""
    with _POOLS_LOCK:
        idle = _POOLS.get(key)
        return idle.pop() if idle else None


def _give_back(key: tuple, con, healthy: bool) -> None:
    """Keep a healthy idle connection for the next transaction; close anything else."""
    if healthy:
        with _POOLS_LOCK:
            idle = _POOLS.setdefault(key, [])
            if len(idle) < _POOL_SIZE:
                idle.append(con)
                return
    con.close()


def _forget_pools_after_fork() -> None:
    """A forked child must neither use nor close its parent's connections (closing one would end
    the parent's session), so it keeps them referenced and unused, and starts its own pool."""
    global _POOLS_LOCK
    _INHERITED.extend(_POOLS.values())
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()  # another thread of the parent may have held it while forking


def _close_pools() -> None:
    """Close this process's idle connections at exit (a PostgreSQL session then ends cleanly)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for idle in pools:
        for con in idle:
            try:
                con.close()
            except Exception:  # noqa: BLE001 - the process is exiting; nothing to report to
                pass


os.register_at_fork(after_in_child=_forget_pools_after_fork)
atexit.register(_close_pools)


def open_index(store_path: Path, location: IndexLocation, store_id: str, url: str | None = None) -> Index:
    """The :class:`Index` at ``location`` of the store created at ``store_id`` (its creation time);
    ``url`` (PostgreSQL only) may add a password to the location."""
    if location.backend == SQLITE:
        return SqliteIndex(store_path, store_id)
    try:
        import psycopg  # noqa: F401
    except ImportError as e:
        raise DataError(
            "a PostgreSQL index needs psycopg",
            field="index_url",
            hint="pip install 'psycopg[binary]'",
        ) from e
    return PostgresIndex(location, url)


def same_database(location: IndexLocation, url: str | None) -> bool:
    """Whether ``url`` (as a user gives it) names the database of ``location``."""
    if url is None:
        return True
    if url == SQLITE:
        return location.backend == SQLITE
    return location.backend == POSTGRESQL and _redact(url) == location.url
