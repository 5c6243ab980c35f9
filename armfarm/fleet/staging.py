"""Chunks of long episodes, kept on disk until the episode is complete.

``STORE/fleet/uploads/<robot_id>/<episode_id>/<index>.chunk`` (``<index>.final`` for the last
chunk). Each chunk is written to a temporary file, fsynced and renamed in, so a staged chunk
survives a crash whole or not at all, and a retried chunk simply replaces itself. Staged chunks are
not part of the store: readers see the episode only once it is assembled and committed.

Quotas are kept in memory (counted from disk once, at start) and checked and reserved under one lock
before a chunk is written, so concurrent chunks cannot overshoot them: per robot, the bytes (counted
in whole 4 KiB disk blocks) and the number of files; for all robots together, the bytes.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

from armfarm.durable import fsync_path
from armfarm.fleet.errors import FleetError
from armfarm.fleet.limits import retry_after_header

_SUFFIXES = (".chunk", ".final")
BLOCK = 4096
MAX_MISSING_LISTED = 100  # a reply names at most this many missing chunks
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}


def blocks(size: int) -> int:
    """Bytes a file of ``size`` takes on disk, in whole blocks (an empty file still takes one)."""
    return max(1, -(-size // BLOCK)) * BLOCK


class ChunkStaging:
    """Staged chunks under ``root`` within per-robot and global quotas."""

    def __init__(self, root: Path, max_bytes_per_robot: int, max_files_per_robot: int = 10_000,
                 max_bytes_total: int = 8 << 30):
        self.root = root
        self.max_bytes_per_robot = max_bytes_per_robot
        self.max_files_per_robot = max_files_per_robot
        self.max_bytes_total = max_bytes_total
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._bytes: dict[str, int] = defaultdict(int)
        self._files: dict[str, int] = defaultdict(int)
        self._sizes: dict[Path, int] = {}  # staged file -> its counted size
        for f in root.glob("*/*/*"):
            if f.suffix in _SUFFIXES:
                self._count(f.parent.parent.name, f, blocks(f.stat().st_size))

    def _count(self, robot_id: str, path: Path, size: int) -> None:
        self._sizes[path] = size
        self._bytes[robot_id] += size
        self._files[robot_id] += 1

    def _uncount(self, robot_id: str, path: Path) -> None:
        size = self._sizes.pop(path, None)
        if size is not None:
            self._bytes[robot_id] -= size
            self._files[robot_id] -= 1

    @property
    def total_bytes(self) -> int:
        return sum(self._bytes.values())

    def _dir(self, robot_id: str, episode_id: str) -> Path:
        return self.root / robot_id / episode_id

    def put(self, robot_id: str, episode_id: str, index: int, final: bool, body: bytes) -> None:
        """Durably stage chunk ``index`` (replacing an earlier copy of it).

        Raises:
            FleetError: 413 past the robot's quota (bytes or files), 507 past the global one, 503 if the
            disk is full or read-only (nothing is left behind; retry later).
        """
        directory = self._dir(robot_id, episode_id)
        name = f"{index:08d}"
        target = directory / f"{name}{'.final' if final else '.chunk'}"
        size = blocks(len(body))
        with self._lock:  # check and reserve at once: concurrent chunks cannot overshoot a quota
            replaced = [directory / f"{name}{s}" for s in _SUFFIXES if (directory / f"{name}{s}") in self._sizes]
            freed = sum(self._sizes[p] for p in replaced)
            robot_bytes = self._bytes[robot_id] - freed + size
            if robot_bytes > self.max_bytes_per_robot:
                raise FleetError(413, f"robot {robot_id!r} has {self._bytes[robot_id]} bytes of unfinished chunked "
                                 f"uploads; this chunk would exceed the limit of {self.max_bytes_per_robot} bytes: "
                                 "finish or abandon other episodes")
            if self._files[robot_id] - len(replaced) + 1 > self.max_files_per_robot:
                raise FleetError(413, f"robot {robot_id!r} has {self._files[robot_id]} staged chunks, the most it may "
                                 "keep; finish or abandon other episodes")
            if self.total_bytes - freed + size > self.max_bytes_total:
                raise FleetError(507, "the server's staging area for chunked uploads is full; retry later",
                                 retry_after_header(60))
            for path in replaced:
                self._uncount(robot_id, path)
            self._count(robot_id, target, size)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            tmp = directory / f".{uuid.uuid4().hex}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(body)
                    f.flush()
                    os.fsync(f.fileno())
                for path in replaced:
                    path.unlink(missing_ok=True)
                os.rename(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            fsync_path(directory)
        except OSError as e:
            with self._lock:
                self._uncount(robot_id, target)
            if e.errno in _DISK_ERRNOS:
                raise FleetError(503, f"cannot stage the chunk: {os.strerror(e.errno)}; retry later",
                                 retry_after_header(30)) from None
            raise

    def missing(self, robot_id: str, episode_id: str) -> list[int] | None:
        """Indices still needed before the episode is complete (at most ``MAX_MISSING_LISTED``, lowest
        first), or None while the final chunk is unknown."""
        names = {f.name for f in self._dir(robot_id, episode_id).glob("*") if f.suffix in _SUFFIXES}
        finals = [int(n.split(".")[0]) for n in names if n.endswith(".final")]
        if not finals:
            return None
        have = {int(n.split(".")[0]) for n in names}
        out = []
        for i in range(max(finals)):
            if i not in have:
                out.append(i)
                if len(out) == MAX_MISSING_LISTED:
                    break
        return out

    def read(self, robot_id: str, episode_id: str) -> list[bytes]:
        """The staged chunks' bodies in index order."""
        files = sorted(f for f in self._dir(robot_id, episode_id).glob("*") if f.suffix in _SUFFIXES)
        return [f.read_bytes() for f in files]

    def discard(self, robot_id: str, episode_id: str) -> None:
        """Forget an episode's chunks (after it is committed, or rejected)."""
        directory = self._dir(robot_id, episode_id)
        with self._lock:
            for path in [p for p in self._sizes if p.parent == directory]:
                self._uncount(robot_id, path)
        shutil.rmtree(directory, ignore_errors=True)

    def discard_robot(self, robot_id: str) -> int:
        """Forget every unfinished upload of ``robot_id`` (its registration is gone); return how many."""
        directories = [d for d in (self.root / robot_id).glob("*") if d.is_dir()]
        for directory in directories:
            self.discard(robot_id, directory.name)
        shutil.rmtree(self.root / robot_id, ignore_errors=True)
        return len(directories)

    def expire(self, older_than_s: float) -> list[str]:
        """Remove uploads untouched for ``older_than_s`` seconds; return their ``robot/episode`` names."""
        cutoff = time.time() - older_than_s
        removed = []
        for directory in self.root.glob("*/*"):
            try:
                files = list(directory.iterdir())
                if all(f.stat().st_mtime < cutoff for f in files):
                    self.discard(directory.parent.name, directory.name)
                    removed.append(f"{directory.parent.name}/{directory.name}")
            except FileNotFoundError:  # finished or discarded meanwhile
                continue
        return removed
