"""A farm's state on disk: everything lives under FARM_DIR, and every record is written atomically.

::

    FARM_DIR/farm.toml                   the settings (armfarm.farm.config)
    FARM_DIR/farm.lock                   held (flock) by the running supervisor; holds its pid
    FARM_DIR/store/                      the episode store the fleet server writes and the learner reads
    FARM_DIR/admin.token                 the fleet's admin token (0600), outside the store learners read
    FARM_DIR/signing.key                 the key that signs published policies (0600), outside the store
    FARM_DIR/tokens/<robot>.token        each robot's token (0600)
    FARM_DIR/tokens/signing.pub          the public key every robot pins
    FARM_DIR/spools/<robot>/             each robot's spool: episodes not yet acknowledged, its policy cache
    FARM_DIR/acks/<robot>.jsonl          every ack a robot received, one JSON line each (append-only)
    FARM_DIR/rounds/round_NNNN/round.json   one round's record (phase, data used, evaluation, decision)
    FARM_DIR/rounds/round_NNNN/run/      the round's candidate: a run directory (armfarm.runs)
    FARM_DIR/live.json                   the live policy: version, round, checkpoint, evaluation
    FARM_DIR/state/components.json       the supervisor's view: pid, alive, restarts, recent deaths
    FARM_DIR/state/robots/<robot>.json   each robot's heartbeat: pid, episodes, last upload, policy version
    FARM_DIR/state/learner.json          the learner's progress in the current round
    FARM_DIR/logs/<component>.log        what each component printed

A round moves through phases, each written by one component only: ``training`` (the learner creates
the record and trains), ``trained`` (the learner is done; the evaluator takes over), ``decided`` (the
evaluator evaluated, gated and, when promoted, published). So no two processes write one file.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from armfarm.durable import write_json

TRAINING, TRAINED, DECIDED = "training", "trained", "decided"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON at ``path``, or ``default`` when there is none (or it cannot be parsed)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped) is not alive
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class FarmPaths:
    """Where each piece of a farm lives (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "farm.toml"
        self.lock = self.root / "farm.lock"
        self.store = self.root / "store"
        self.admin_token = self.root / "admin.token"
        self.signing_key = self.root / "signing.key"
        self.tokens = self.root / "tokens"
        self.signing_pub = self.tokens / "signing.pub"
        self.spools = self.root / "spools"
        self.acks = self.root / "acks"
        self.rounds = self.root / "rounds"
        self.live = self.root / "live.json"
        self.state = self.root / "state"
        self.components = self.state / "components.json"
        self.robot_states = self.state / "robots"
        self.learner = self.state / "learner.json"
        self.logs = self.root / "logs"
        self.shield = self.root / "shield"  # a link to the current shield directory under shields/
        self.shields = self.root / "shields"

    def round_dir(self, index: int) -> Path:
        return self.rounds / f"round_{index:04d}"

    def round_file(self, index: int) -> Path:
        return self.round_dir(index) / "round.json"

    def run_dir(self, index: int) -> Path:
        return self.round_dir(index) / "run"

    def token(self, robot_id: str) -> Path:
        return self.tokens / f"{robot_id}.token"

    def spool(self, robot_id: str) -> Path:
        return self.spools / robot_id

    def ack_log(self, robot_id: str) -> Path:
        return self.acks / f"{robot_id}.jsonl"

    def robot_state(self, robot_id: str) -> Path:
        return self.robot_states / f"{robot_id}.json"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def make(self) -> None:
        for d in (self.tokens, self.spools, self.acks, self.rounds, self.robot_states, self.logs):
            d.mkdir(parents=True, exist_ok=True)


def robot_ids(count: int) -> list[str]:
    return [f"robot-{r}" for r in range(count)]


# -- rounds ------------------------------------------------------------------------------------------


def rounds(paths: FarmPaths) -> list[dict]:
    """Every round's record, oldest first."""
    found = []
    for directory in sorted(paths.rounds.glob("round_*")):
        record = read_json(directory / "round.json")
        if record is not None:
            found.append(record)
    return found


def write_round(paths: FarmPaths, record: dict) -> None:
    write_json(paths.round_file(record["round"]), record)


def live(paths: FarmPaths) -> dict | None:
    """The live policy's record, or None while the robots run their default behaviour."""
    return read_json(paths.live)


# -- the farm lock -----------------------------------------------------------------------------------


class FarmLocked(RuntimeError):
    """Another ``armfarm farm run`` holds this farm."""


class FarmLock:
    """An exclusive ``flock`` on FARM_DIR/farm.lock for as long as the supervisor runs.

    The kernel drops it when the holder dies, even by ``kill -9``, so a crashed farm never stays locked;
    the file names the holder's pid for the refusal message.
    """

    def __init__(self, paths: FarmPaths):
        self.paths = paths
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise FarmLocked(f"farm {self.paths.root} is already running (pid {holder(self.paths) or 'unknown'}); "
                             "stop it first, or watch it with `armfarm farm status`") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def holder(paths: FarmPaths) -> int | None:
    """The pid of the supervisor running this farm, or None if none runs."""
    try:
        fd = os.open(paths.lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held: read who holds it
            text = Path(paths.lock).read_text().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def single_instance(paths: FarmPaths, component: str) -> int:
    """Hold an exclusive lock for ``component`` (e.g. the learner) for the life of this process, so an
    orphan of a killed supervisor and its replacement never both run; returns the lock's descriptor.
    Raises FarmLocked when another instance holds it."""
    paths.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.state / f"{component}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise FarmLocked(f"another {component} of farm {paths.root} is running") from None
    return fd


def start_component(farm_dir: str | Path, component: str):
    """What every single-instance component (the learner, the evaluator) does first: take its lock,
    read farm.toml, and turn SIGTERM/SIGINT into a stop event. Returns ``(paths, config, stop)``."""
    import signal
    import threading

    from armfarm.farm import config as farm_config

    paths = FarmPaths(farm_dir)
    single_instance(paths, component)
    config = farm_config.load(paths.root)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return paths, config, stop
