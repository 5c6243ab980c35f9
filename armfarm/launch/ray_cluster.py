"""Ray: join (or start) a cluster with token authentication on, and run armfarm's work on it as tasks.

``pip install 'armfarm[ray]'`` provides Ray; nothing else in armfarm imports it.

**Authentication.** Ray clusters authenticate every connection with a shared token when
``RAY_AUTH_MODE=token``. armfarm sets that mode for every cluster it starts or joins and refuses to run
with it switched off (``RAY_AUTH_MODE=disabled``). The token reaches a process through ``RAY_AUTH_TOKEN``
(an environment variable), ``RAY_AUTH_TOKEN_PATH`` (a file) or ``~/.ray/auth_token``: give every node and
every driver the same one (``ray get-auth-token --generate`` writes a new one; on a real cluster, put it
in the nodes' secret store or the KubeRay secret). Workers started by a raylet inherit it. armfarm's own
fleet tokens still guard the fleet server; the Ray token only admits processes to the cluster.

With ``address="local"`` and no token at hand, armfarm makes a fresh one for that private instance (in
this process's environment, so only its own Ray processes see it).

**Resources.** ``address="local"`` starts a Ray instance inside this process with explicit limits for a
small machine: ``num_cpus`` (default: this machine's cores), a 256 MiB object store and no dashboard.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

LOCAL = "local"
OBJECT_STORE_BYTES = 256 * 1024 * 1024


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be joined safely."""


def _ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable("Ray is not installed; pip install 'armfarm[ray]' (or drop --ray)") from None
    return ray


def require_token_auth() -> None:
    """Turn Ray's token authentication on for this process and its children; refuse it switched off."""
    mode = os.environ.setdefault("RAY_AUTH_MODE", "token")
    if mode.strip().lower() != "token":
        raise RayUnavailable(f"RAY_AUTH_MODE={mode!r}: armfarm runs Ray only with token authentication "
                             "(RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                             "~/.ray/auth_token); see the README's 'Scaling out'")


def has_token() -> bool:
    """Whether this process can present a Ray token (environment, token file, or ``~/.ray/auth_token``)."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or (path is not None and os.path.isfile(path)) or \
        os.path.isfile(os.path.expanduser("~/.ray/auth_token"))


def connect(address: str, num_cpus: int | None = None) -> Any:
    """Join the cluster at ``address`` (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``), or start one here
    with ``address="local"``; a no-op when this process is already connected. Returns the ``ray`` module."""
    require_token_auth()
    if address == LOCAL and not has_token():  # a private instance: a fresh token for its own processes only
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    ray = _ray()
    if ray.is_initialized():
        return ray
    _reload_ray_config()
    if address == LOCAL:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, object_store_memory=OBJECT_STORE_BYTES,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
        return ray
    if not has_token():
        raise RayUnavailable(f"no Ray token to join the cluster at {address!r}: set RAY_AUTH_TOKEN (or "
                             "RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token) to the cluster's token")
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        raise RayUnavailable(f"cannot join the Ray cluster at {address!r}: {exc}") from None
    return ray


def _reload_ray_config() -> None:
    """Ray reads ``RAY_AUTH_MODE`` into a cached config when it is first imported; re-read it, as Ray's own
    ``ray start`` does after switching token authentication on (``ray._raylet.Config.initialize``)."""
    from ray._raylet import Config

    Config.initialize("")


def run_tasks(fn: Callable, arg_lists: Sequence[tuple], address: str, num_cpus: float = 1.0, num_gpus: float = 0.0,
              max_retries: int = 2, on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``fn(*args)`` for every ``args`` of ``arg_lists`` as Ray tasks on the cluster at ``address``, each
    holding ``num_cpus`` CPUs and ``num_gpus`` GPUs and retried up to ``max_retries`` times when its worker
    dies (``fn`` must be safe to run again). ``on_result(i, result)`` is called as each finishes. Returns
    the results in order; a task that raises ends the run with a ``RuntimeError`` naming its arguments."""
    ray = connect(address)
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(fn)
    refs = [remote.remote(*args) for args in arg_lists]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                try:
                    results[i] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise RuntimeError(f"Ray task {i} ({_brief(arg_lists[i])}) failed: {exc}") from None
                if on_result is not None:
                    on_result(i, results[i])
    finally:
        for ref in pending:
            ray.cancel(ref)
    return results


def _brief(args: tuple) -> str:
    text = ", ".join(repr(a) for a in args)
    return text if len(text) < 300 else text[:297] + "..."


# ============================================================================ farm components on Ray

ADDRESS_ENV = "ARMFARM_RAY_ADDRESS"  # tells a component started on Ray which cluster to use for its own tasks


class ComponentActor:
    """A Ray actor that runs one farm component (``python -m MODULE ARGS``) as a child process on its node.

    ``run()`` returns when the component exits cleanly or was told to stop. When the component dies, the
    actor dies with it (``os._exit``), exactly as when its node dies: Ray then restarts the actor
    (``max_restarts``) on any node and retries ``run`` for as long as restarts remain, so the farm's restart
    policy is Ray's. The actor is threaded, so that ``signal`` reaches the child while ``run`` waits on it."""

    def __init__(self, spec):
        self.spec, self.popen, self._stopping = spec, None, False
        self.starts = None if spec.log is None else Path(str(spec.log) + ".starts")
        if self.starts is not None:  # one line per actor incarnation: Ray's restarts, counted across nodes
            with open(self.starts, "a") as f:
                f.write("start\n")

    def run(self) -> int:
        import subprocess
        import sys

        from armfarm.launch.local import _die_with_parent

        log = open(self.spec.log, "ab") if self.spec.log is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", self.spec.module, *self.spec.args], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **self.spec.env},
                preexec_fn=_die_with_parent)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        code = self.popen.wait()
        if code != 0 and not self._stopping:
            os._exit(1)  # the component died: let Ray restart this actor and retry run()
        return code

    def signal(self, signum: int) -> None:
        self._stopping = True
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signum)

    def describe(self) -> dict:
        starts = 1 if self.starts is None else len(self.starts.read_text().splitlines())
        return {"pid": None if self.popen is None else self.popen.pid, "attempts": starts}


class RayProcess:
    """The supervisor's handle of a component running on Ray (the :class:`~armfarm.launch.LocalProcess`
    interface; ``restarts`` is how often Ray restarted it)."""

    def __init__(self, ray, spec, actor, ref):
        self.ray, self.spec, self.actor, self.ref = ray, spec, actor, ref
        self._returncode: int | None = None
        self._info = {"pid": None, "attempts": 1}

    def _poll(self, timeout: float = 0.0) -> int | None:
        if self._returncode is None:
            done, _ = self.ray.wait([self.ref], timeout=timeout)
            if done:
                try:
                    self._returncode = int(self.ray.get(self.ref))
                except self.ray.exceptions.RayError:
                    self._returncode = 1
        return self._returncode

    def _describe(self) -> dict:
        if self._returncode is None:
            try:
                self._info = self.ray.get(self.actor.describe.remote(), timeout=2.0)
            except self.ray.exceptions.RayError:
                pass
        return self._info

    @property
    def pid(self) -> int | None:
        return self._describe()["pid"]

    @property
    def restarts(self) -> int:
        return max(0, self._describe()["attempts"] - 1)

    @property
    def returncode(self) -> int | None:
        return self._poll()

    def alive(self) -> bool:
        return self._poll() is None

    def terminate(self) -> None:
        import signal

        if self.alive():
            self.actor.signal.remote(int(signal.SIGTERM))

    def kill(self) -> None:
        import signal

        if self.alive():
            try:
                self.ray.get(self.actor.signal.remote(int(signal.SIGKILL)), timeout=5.0)
            except self.ray.exceptions.RayError:
                pass
        self.ray.kill(self.actor, no_restart=True)

    def wait(self, timeout: float | None = None) -> int | None:
        return self._poll(timeout=timeout)


class RayLauncher:
    """Starts farm components as :class:`ComponentActor` actors on a Ray cluster: robots spread over the
    nodes, each holding the CPUs (and, for the learner, GPUs) that ``resources(name)`` gives, and restarted
    by Ray up to ``max_restarts`` times (``handles_restarts``: the supervisor leaves restarts to Ray).
    Components named in ``local`` (the fleet server, which robots outside the cluster must reach at a
    fixed address) run as local processes."""

    handles_restarts = True

    def __init__(self, address: str, max_restarts: int, resources: Callable[[str], dict],
                 local: tuple[str, ...] = ("server",)):
        from armfarm.launch.local import LocalLauncher

        self.ray = connect(address)
        self.address = self.ray.get_runtime_context().gcs_address
        self.max_restarts, self.resources, self.local = max_restarts, resources, local
        self.local_launcher = LocalLauncher()

    def start(self, spec):
        if spec.name in self.local:
            return self.local_launcher.start(spec)
        import dataclasses

        spec = dataclasses.replace(spec, env={**spec.env, ADDRESS_ENV: self.address})
        if spec.log is not None:
            spec.log.parent.mkdir(parents=True, exist_ok=True)
            Path(str(spec.log) + ".starts").write_text("")
        options = {"max_restarts": self.max_restarts, "max_task_retries": -1,  # retried while restarts remain
                   "max_concurrency": 2, **self.resources(spec.name)}
        actor = self.ray.remote(ComponentActor).options(**options).remote(spec)
        return RayProcess(self.ray, spec, actor, actor.run.remote())


def cluster_gpus(ray) -> float:
    """GPUs the cluster has in all."""
    return float(ray.cluster_resources().get("GPU", 0.0))
