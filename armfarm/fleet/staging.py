"""Chunks of long episodes, kept on disk until the episode is complete.

``STORE/fleet/uploads/<robot_id>/<episode_id>/<index>.chunk`` (``<index>.final`` for the last
chunk). Each chunk is written to a temporary file, fsynced and renamed in, so a staged chunk
survives a crash whole or not at all, and a retried chunk simply replaces itself. Staged chunks are
not part of the store: readers see the episode only once it is assembled and committed.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from armfarm.durable import fsync_path
from armfarm.fleet.errors import FleetError

_SUFFIXES = (".chunk", ".final")


class ChunkStaging:
    """Staged chunks under ``root``, at most ``max_bytes_per_robot`` bytes for each robot."""

    def __init__(self, root: Path, max_bytes_per_robot: int):
        self.root = root
        self.max_bytes_per_robot = max_bytes_per_robot
        root.mkdir(parents=True, exist_ok=True)

    def _dir(self, robot_id: str, episode_id: str) -> Path:
        return self.root / robot_id / episode_id

    def put(self, robot_id: str, episode_id: str, index: int, final: bool, body: bytes) -> None:
        """Durably stage chunk ``index`` (replacing an earlier copy of it).

        Raises:
            FleetError: 413 if the robot's staged chunks would exceed the quota.
        """
        staged = sum(f.stat().st_size for f in (self.root / robot_id).glob("*/*") if f.suffix in _SUFFIXES)
        if staged + len(body) > self.max_bytes_per_robot:
            raise FleetError(
                413,
                f"robot {robot_id!r} has {staged} bytes of unfinished chunked uploads; this chunk would "
                f"exceed the limit of {self.max_bytes_per_robot} bytes: finish or abandon other episodes",
            )
        directory = self._dir(robot_id, episode_id)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        name = f"{index:08d}"
        for suffix in _SUFFIXES:
            (directory / f"{name}{suffix}").unlink(missing_ok=True)
        os.rename(tmp, directory / f"{name}{'.final' if final else '.chunk'}")
        fsync_path(directory)

    def missing(self, robot_id: str, episode_id: str) -> list[int] | None:
        """Indices still needed before the episode is complete, or None while the final chunk is unknown."""
        names = {f.name for f in self._dir(robot_id, episode_id).glob("*") if f.suffix in _SUFFIXES}
        finals = [int(n.split(".")[0]) for n in names if n.endswith(".final")]
        if not finals:
            return None
        have = {int(n.split(".")[0]) for n in names}
        return [i for i in range(max(finals)) if i not in have]

    def read(self, robot_id: str, episode_id: str) -> list[bytes]:
        """The staged chunks' bodies in index order."""
        files = sorted(f for f in self._dir(robot_id, episode_id).glob("*") if f.suffix in _SUFFIXES)
        return [f.read_bytes() for f in files]

    def discard(self, robot_id: str, episode_id: str) -> None:
        """Forget an episode's chunks (after it is committed, or rejected)."""
        shutil.rmtree(self._dir(robot_id, episode_id), ignore_errors=True)

    def expire(self, older_than_s: float) -> list[str]:
        """Remove uploads untouched for ``older_than_s`` seconds; return their ``robot/episode`` names."""
        cutoff = time.time() - older_than_s
        removed = []
        for directory in self.root.glob("*/*"):
            files = list(directory.iterdir())
            if all(f.stat().st_mtime < cutoff for f in files):
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(f"{directory.parent.name}/{directory.name}")
        return removed
