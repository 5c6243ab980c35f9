"""Local processes: each component is ``python -m MODULE ARGS...`` with its output appended to a log file.

Children ask the kernel to send them SIGTERM when their parent dies (``PR_SET_PDEATHSIG``), so a
supervisor killed with ``kill -9`` leaves no orphans running beside its replacement.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass(frozen=True)
class ComponentSpec:
    """What to run: ``python -m module *args``, logging to ``log``, with extra environment variables."""

    name: str
    module: str
    args: tuple[str, ...] = ()
    log: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


class LocalProcess:
    """A started component."""

    def __init__(self, spec: ComponentSpec, popen: subprocess.Popen):
        self.spec, self.popen = spec, popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self) -> None:
        if self.alive():
            self.popen.terminate()

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


class LocalLauncher:
    """Starts components as child processes of this one."""

    def start(self, spec: ComponentSpec) -> LocalProcess:
        log = subprocess.DEVNULL
        if spec.log is not None:
            spec.log.parent.mkdir(parents=True, exist_ok=True)
            log = open(spec.log, "ab")  # noqa: SIM115 - the child keeps it; closed below in this process
        try:
            popen = subprocess.Popen(
                [sys.executable, "-m", spec.module, *spec.args], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        return LocalProcess(spec, popen)
