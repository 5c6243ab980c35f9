"""A simulated fleet: N robot processes, each a real Gymnasium environment driven by the client.

``run_sim`` registers robots ``<prefix>-0 .. <prefix>-(N-1)`` with the admin token (issuing new
tokens to robots registered before), starts one process per robot, and lets each record its
episodes and wait until the server has acknowledged them all. Every acknowledged episode is
appended to the ack log as one JSON line (``episode_id``, ``robot_id``, ``transitions``,
``sha256``, ``acked_at``), written by the robot that received the ack.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from armfarm.durable import append_line
from armfarm.fleet.admin import Admin, env_spec
from armfarm.fleet.client import ClientConfig, FleetClient

REGISTER_WAIT_S = 60.0  # how long to wait for the server to come up before registering


@dataclass
class SimReport:
    """Outcome of :func:`run_sim`; ``ok`` means every robot finished and its spool drained."""

    robots: int
    acked: int = 0
    transitions: int = 0
    rejected: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    spool_dir: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and not self.rejected


def _robot_main(config: ClientConfig, episodes: int, ack_log: str | None, events, drain_timeout: float) -> None:
    """One robot process: record ``episodes`` episodes, then wait until all are acknowledged."""
    logging.basicConfig(level=logging.ERROR, format=f"[{config.robot_id}] %(levelname)s %(message)s")

    def on_ack(ack: dict) -> None:
        if ack_log is not None:
            append_line(ack_log, {**ack, "acked_at": datetime.now(UTC).isoformat()})
        events.put(("ack", config.robot_id, ack["transitions"]))

    try:
        with FleetClient(config, on_ack=on_ack) as client:
            client.run(episodes)
            drained = client.drain(drain_timeout)
            events.put(("done", config.robot_id, drained, len(client.spool.rejected())))
    except Exception as e:  # reported to the parent, which names the robot
        events.put(("error", config.robot_id, f"{type(e).__name__}: {e}"))


def run_sim(
    server: str,
    admin_token: str,
    env_id: str,
    robots: int,
    episodes: int,
    ack_log: str | Path | None = None,
    spool_dir: str | Path | None = None,
    prefix: str = "sim",
    seed: int = 0,
    max_steps: int | None = None,
    noise: float = 0.0,
    policy_poll_s: float = 5.0,
    drain_timeout_s: float = 600.0,
    on_ack: Callable[[int], None] | None = None,
    shield: str | Path | None = None,
) -> SimReport:
    """Run ``robots`` robot processes with ``episodes`` episodes each against ``server``.

    ``spool_dir`` keeps each robot's spool in ``spool_dir/<robot_id>`` (a rerun resumes from it);
    without it, a temporary directory is used and removed if everything was acknowledged.
    ``on_ack(transitions)`` is called in this process for every ack (e.g. for a progress bar).
    With ``shield`` every robot acts behind that shield directory; a robot that cannot load it does not
    move and is reported as failed with the shield's error.
    """
    if robots < 1 or episodes < 1:
        raise ValueError(f"robots and episodes must be >= 1, got {robots} and {episodes}")
    started = time.monotonic()
    report = SimReport(robots)
    spool_root = Path(spool_dir) if spool_dir is not None else Path(tempfile.mkdtemp(prefix="armfarm-sim-"))
    report.spool_dir = str(spool_root)
    configs = []
    spec = env_spec(env_id)
    with Admin(server, admin_token, wait_s=REGISTER_WAIT_S) as admin:
        for r in range(robots):
            robot_id = f"{prefix}-{r}"
            answer = admin.register(robot_id, env_id, spec, rotate_if_registered=True)
            configs.append(ClientConfig(
                server=server, token=answer["token"], signing_key=answer["signing_key"], robot_id=robot_id, env_id=env_id, spool_dir=spool_root / robot_id,
                noise=noise, seed=seed + 1_000_000 * r, max_steps=max_steps, policy_poll_s=policy_poll_s,
                shield=shield,
            ))
    context = mp.get_context("spawn")
    events = context.Queue()
    log_path = None if ack_log is None else str(ack_log)
    processes = {
        c.robot_id: context.Process(target=_robot_main, args=(c, episodes, log_path, events, drain_timeout_s),
                                    name=c.robot_id, daemon=True)
        for c in configs
    }
    for process in processes.values():
        process.start()
    finished: set[str] = set()
    while len(finished) < robots:
        try:
            event = events.get(timeout=1.0)
        except queue.Empty:
            for robot_id, process in processes.items():
                if robot_id not in finished and not process.is_alive() and events.empty():
                    report.failures.append(f"robot {robot_id}: process died (exit code {process.exitcode})")
                    finished.add(robot_id)
            continue
        kind, robot_id, *rest = event
        if kind == "ack":
            report.acked += 1
            report.transitions += rest[0]
            if on_ack is not None:
                on_ack(rest[0])
            continue
        finished.add(robot_id)
        if kind == "error":
            report.failures.append(f"robot {robot_id}: {rest[0]}")
        else:
            drained, rejected = rest
            report.rejected += rejected
            if not drained:
                report.failures.append(f"robot {robot_id}: episodes still unacknowledged after {drain_timeout_s:g}s")
    for process in processes.values():
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
    report.seconds = time.monotonic() - started
    if spool_dir is None and report.ok:
        shutil.rmtree(spool_root, ignore_errors=True)
        report.spool_dir = None
    return report
