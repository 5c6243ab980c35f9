"""A throwaway PostgreSQL cluster for tests, started from Debian's packages (``apt-get install postgresql``).

The cluster lives in a fresh directory under the system temp dir, listens on a free loopback port
only, trusts local connections, and is stopped (``pg_ctl stop -m immediate``) and deleted at exit.
``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user (via
``runuser``), which Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_GLOB = "/usr/lib/postgresql/*/bin"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl``, or None."""
    candidates = [
        Path(d) for d in glob.glob(PG_GLOB) if (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file()
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    """``with PostgresCluster(bindir) as url:`` gives ``postgresql://postgres@127.0.0.1:PORT/armfarm_test``."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="armfarm-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def __enter__(self) -> str:
        try:
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--no-sync")
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=300"
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                      "-t", "60", "-o", options, "start")
            self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                      "armfarm_test")
        except BaseException:
            self.__exit__()
            raise
        return f"postgresql://postgres@127.0.0.1:{self.port}/armfarm_test"

    def __exit__(self, *exc) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                            "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
