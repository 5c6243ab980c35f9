"""The supervisor behind ``armfarm farm run``: starts every component as its own process, restarts any
that dies, and stops the farm cleanly.

Components: the fleet server (``armfarm serve`` on the farm's store, with the dashboard), N robots
(:mod:`armfarm.farm.robot`), the learner (:mod:`armfarm.farm.learner`) and the evaluator
(:mod:`armfarm.farm.evaluator`). A component that dies is restarted after an exponential backoff
(``backoff_s * 2**(deaths - 1)``, at most ``backoff_max_s``); one that dies ``max_restarts`` times
within ``restart_window_s`` stops the farm with an error that names it and quotes the end of its log.

The farm runs until ``rounds`` more rounds are decided, ``minutes`` have passed, or SIGINT/SIGTERM
arrives. Stopping is graceful: robots finish and spool their episode, the learner checkpoints, the
evaluator finishes its decision, and the server stops last so the robots' final uploads land.
Everything is on disk (:mod:`armfarm.farm.state`), so a later ``farm run`` resumes where this one ended,
even after ``kill -9`` of the whole process tree.

With ``ray_address`` the robots, learner and evaluator are Ray actors (:class:`armfarm.launch.ray_cluster.
RayLauncher`): robots spread over the nodes, the learner with a GPU when ``learner_gpus`` asks and the cluster
has one, evaluation episodes as parallel tasks. Restarts are then Ray's (up to ``max_restarts`` per
component, on any node); a component Ray gives up on stops the farm. The fleet server stays a local process
on this machine, so robots outside the cluster reach it as before, and the farm directory must be on a
filesystem the nodes share.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from armfarm.farm import config as farm_config
from armfarm.farm.state import (
    DECIDED,
    FarmLock,
    FarmPaths,
    now_iso,
    robot_ids,
    rounds,
    write_json,
)
from armfarm.launch import ComponentSpec, LocalLauncher

TICK_S = 0.25
STOP_GRACE_S = 30.0


class FarmError(RuntimeError):
    """The farm stopped because a component keeps dying (or could not be set up)."""


@dataclass
class Component:
    spec: ComponentSpec
    process: object | None = None
    restarts: int = 0
    deaths: deque = field(default_factory=deque)  # monotonic times of recent deaths
    restart_at: float | None = None
    last_exit: int | None = None
    started_at: str | None = None


@dataclass
class FarmReport:
    rounds_decided: int
    stopped_because: str
    seconds: float


def prepare(paths: FarmPaths, config) -> None:
    """Create the store (bound to the environment's spaces), the admin token, every robot's token and, with
    ``[shield]``, the initial shield."""
    from armfarm.data import EpisodeStore, StoreSpec
    from armfarm.envs.registry import make_env
    from armfarm.fleet.admin import write_token
    from armfarm.fleet.auth import load_or_create_admin_token
    from armfarm.fleet.errors import FleetError
    from armfarm.fleet.registry import Registry

    paths.make()
    env = make_env(config.env)
    spec = StoreSpec.from_gymnasium(env.observation_space, env.action_space)
    env.close()
    store = EpisodeStore(paths.store, create=True, spec=spec)
    if store.spec != spec:
        raise FarmError(f"the farm's store {paths.store} holds {store.spec} episodes, but {config.env} has {spec}; "
                        "a farm keeps one environment")
    load_or_create_admin_token(paths.admin_token)
    registry = Registry(store, paths.signing_key)
    paths.signing_pub.write_text(registry.signing_key + "\n")
    if config.shield:
        from armfarm.farm.shielding import ensure_initial_shield

        ensure_initial_shield(paths, config, spec)
    for robot_id in robot_ids(config.robots):
        if paths.token(robot_id).is_file():
            continue
        try:
            _, token = registry.register(robot_id, config.env, spec)
        except FleetError:  # registered before, its token file lost: issue a new token
            _, token = registry.rotate_token(robot_id)
        write_token(paths.token(robot_id), token)


def component_specs(paths: FarmPaths, config) -> list[ComponentSpec]:
    root = str(paths.root)
    server = ComponentSpec("server", "armfarm.cli.main", (
        "serve", str(paths.store), "--host", config.host, "--port", str(config.port),
        "--admin-token-file", str(paths.admin_token), "--farm", root,
        "--signing-key-file", str(paths.signing_key),
        "--max-request-bytes", str(config.max_request_bytes), "--rate-limit", str(config.rate_limit),
        "--rate-burst", str(max(200, 4 * config.robots))), paths.log("server"))
    specs = [server,
             ComponentSpec("learner", "armfarm.farm.learner", (root,), paths.log("learner")),
             ComponentSpec("evaluator", "armfarm.farm.evaluator", (root,), paths.log("evaluator"))]
    for robot_id in robot_ids(config.robots):
        specs.append(ComponentSpec(robot_id, "armfarm.farm.robot", (root, robot_id), paths.log(robot_id),
                                   {"OMP_NUM_THREADS": "1"}))
    return specs


def _log_tail(path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


class Supervisor:
    def __init__(self, paths: FarmPaths, config, launcher=None, on_event: Callable[[str, dict], None] | None = None):
        self.paths, self.config = paths, config
        self.launcher = launcher or LocalLauncher()
        self.on_event = on_event or (lambda kind, payload: None)
        self.components = {s.name: Component(s) for s in component_specs(paths, config)}
        self.stop_requested = threading.Event()
        self.stop_reason = ""

    def _event(self, kind: str, **payload) -> None:
        with open(self.paths.log("supervisor"), "a") as f:
            f.write(f"{now_iso()} {kind} {payload}\n")
        self.on_event(kind, payload)

    def _start(self, component: Component) -> None:
        component.process = self.launcher.start(component.spec)
        component.started_at, component.restart_at = now_iso(), None

    def _write_components(self) -> None:
        write_json(self.paths.components, {
            "supervisor_pid": os.getpid(), "updated_at": now_iso(),
            "components": [{"name": name, "pid": c.process.pid if c.process else None,
                            "alive": bool(c.process and c.process.alive()),
                            "restarts": getattr(c.process, "restarts", c.restarts),
                            "last_exit": c.last_exit, "started_at": c.started_at,
                            "restarting_at": c.restart_at is not None}
                           for name, c in self.components.items()]})

    def _check(self, name: str, component: Component, now: float) -> None:
        process = component.process
        if component.restart_at is not None:
            if now >= component.restart_at:
                self._start(component)
                component.restarts += 1
                self._event("restarted", component=name, restarts=component.restarts)
            return
        if process is None or process.alive():
            return
        component.last_exit = process.returncode
        if getattr(self.launcher, "handles_restarts", False) and name != "server":
            raise FarmError(f"{name} died and Ray gave up restarting it after {process.restarts} restart(s) (last exit "
                            f"code {component.last_exit}); the farm stopped. The end of {component.spec.log}:\n"
                            f"{_log_tail(component.spec.log)}")
        component.deaths.append(now)
        while component.deaths and now - component.deaths[0] > self.config.restart_window_s:
            component.deaths.popleft()
        if len(component.deaths) >= self.config.max_restarts:
            raise FarmError(
                f"{name} died {len(component.deaths)} times within {self.config.restart_window_s:g}s (last exit code "
                f"{component.last_exit}); the farm stopped. The end of {component.spec.log}:\n"
                f"{_log_tail(component.spec.log)}")
        delay = min(self.config.backoff_max_s, self.config.backoff_s * 2 ** (len(component.deaths) - 1))
        component.restart_at = now + delay
        self._event("died", component=name, exit_code=component.last_exit, restart_in_s=round(delay, 2))

    def stop(self, reason: str) -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self.stop_requested.set()

    def _shutdown(self) -> None:
        """Robots, learner and evaluator first (SIGTERM, then SIGKILL after the grace), the server last."""
        order = [n for n in self.components if n != "server"], ["server"]
        for group in order:
            for name in group:
                c = self.components[name]
                if c.process is not None:
                    c.process.terminate()
            deadline = time.monotonic() + STOP_GRACE_S
            for name in group:
                c = self.components[name]
                if c.process is not None and c.process.wait(max(0.0, deadline - time.monotonic())) is None:
                    self._event("killed", component=name, reason=f"still running {STOP_GRACE_S:g}s after SIGTERM")
                    c.process.kill()
                    c.process.wait(5)
        self._write_components()

    def run(self, rounds_wanted: int | None, minutes: float | None) -> FarmReport:
        started = time.monotonic()
        decided_at_start = sum(1 for r in rounds(self.paths) if r.get("phase") == DECIDED)
        seen = decided_at_start
        for component in self.components.values():
            self._start(component)
        self._event("started", components=list(self.components), url=f"http://{self.config.host}:{self.config.port}")
        last_written = 0.0
        try:
            while not self.stop_requested.is_set():
                now = time.monotonic()
                for name, component in self.components.items():
                    self._check(name, component, now)
                if now - last_written >= 1.0:  # once a second: the records grow with the farm's age
                    self._write_components()
                    last_written = now
                    records = [r for r in rounds(self.paths) if r.get("phase") == DECIDED]
                    for record in records[seen:]:
                        self._event("round", record=record)
                    seen = max(seen, len(records))
                    if rounds_wanted is not None and len(records) - decided_at_start >= rounds_wanted:
                        self.stop(f"{rounds_wanted} round(s) finished")
                if minutes is not None and now - started >= minutes * 60:
                    self.stop(f"{minutes:g} minute(s) passed")
                self.stop_requested.wait(TICK_S)
        finally:
            self._event("stopping", reason=self.stop_reason or "an error")
            self._shutdown()
        decided = sum(1 for r in rounds(self.paths) if r.get("phase") == DECIDED)
        return FarmReport(decided - decided_at_start, self.stop_reason, round(time.monotonic() - started, 1))


def ray_resources(config, ray) -> Callable[[str], dict]:
    """What each component's Ray actor holds (the ``[ray]`` settings)."""
    from armfarm.launch.ray_cluster import cluster_gpus

    gpus = config.learner_gpus if 0 < config.learner_gpus <= cluster_gpus(ray) else 0.0

    def resources(name: str) -> dict:
        if name == "learner":
            return {"num_cpus": config.learner_cpus, "num_gpus": gpus}
        if name == "evaluator":
            return {"num_cpus": config.evaluator_cpus}
        return {"num_cpus": config.robot_cpus, "scheduling_strategy": "SPREAD"}

    return resources


def run_farm(farm_dir, rounds: int | None = None, minutes: float | None = None,
             on_event: Callable[[str, dict], None] | None = None, ray_address: str | None = None) -> FarmReport:
    """Run (or resume) the farm in ``farm_dir`` until ``rounds`` more rounds are decided, ``minutes``
    pass, or SIGINT/SIGTERM; see the module docstring. Raises FarmLocked when another run holds the farm
    and FarmError when a component keeps dying."""
    if rounds is not None and rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {rounds}")
    if minutes is not None and minutes <= 0:
        raise ValueError(f"--minutes must be > 0, got {minutes}")
    paths = FarmPaths(farm_dir)
    config = farm_config.load(paths.root)
    lock = FarmLock(paths)
    lock.acquire()
    try:
        prepare(paths, config)
        launcher = None
        if ray_address is not None:
            from armfarm.launch.ray_cluster import RayLauncher, connect

            ray = connect(ray_address)
            launcher = RayLauncher(ray_address, config.max_restarts, ray_resources(config, ray))
        supervisor = Supervisor(paths, config, launcher=launcher, on_event=on_event)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda s, _f: supervisor.stop(f"{signal.Signals(s).name}"))
        try:
            return supervisor.run(rounds, minutes)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        lock.release()
