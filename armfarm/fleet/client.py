"""The robot client: act, record, buffer on disk, upload with retries, follow published policies.

::

    from armfarm.fleet.client import ClientConfig, FleetClient

    config = ClientConfig(server="http://127.0.0.1:8000", token=open("arm-1.token").read().strip(),
                          robot_id="arm-1", env_id="Hopper-v5", spool_dir="spool/arm-1")
    with FleetClient(config) as client:
        client.run(episodes=100)        # record 100 episodes (None: until stopped)
        client.drain(timeout=60)        # wait until the server has acknowledged them all

Every recorded episode is first written to the spool (``SPOOL/pending``, fsynced) and only then
sent, so a killed client loses nothing it recorded, and a client that cannot reach the server keeps
recording. A background thread uploads the spool oldest first, retrying with exponential backoff
and jitter; an episode leaves the spool only when the server has acknowledged it (after its
durable commit) and the ack's digest matches what was sent. Uploads the server refuses for good
(4xx other than 401/403/408/429) move to ``SPOOL/rejected`` with the reason, instead of blocking the
queue. The same thread polls for the latest published policy; the actor switches to it at the next
episode, without restarting. Before any policy is published, the robot acts with its default
behaviour (random actions by default); a starting robot checks for one before its first episode.

A robot runs only policies its own server signed (:mod:`armfarm.fleet.signing`): each version's
signature is checked with the pinned public key (``ClientConfig.signing_key``, from registration)
when it is offered and again when the file is loaded from the spool. A robot given no key pins the
server's on first contact (kept in ``SPOOL/policy/server.pub``) and warns that it did.

This module needs NumPy, httpx, cryptography and Gymnasium only: no JAX, no Arrow.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import httpx
import numpy as np

from armfarm.actors.actor import Actor, Behavior, RecordedEpisode
from armfarm.durable import fsync_path
from armfarm.envs.behavior import BehaviorSpec, make_behavior
from armfarm.envs.pacing import Paced
from armfarm.envs.registry import make_env
from armfarm.envs.rollout import stack_observations
from armfarm.fleet.payload import (
    CONTENT_TYPE,
    PayloadError,
    content_digest,
    decode,
    encode,
    split,
    wire_arrays,
)
from armfarm.fleet.signing import read_public_key, verify
from armfarm.shield import Shield, ShieldedPolicy, ShieldError, unpack_shield

log = logging.getLogger("armfarm.fleet.client")

_RETRYABLE = {401, 403, 408, 425, 429}  # 401/403: an operator must fix the token; the data waits


@dataclass
class ClientConfig:
    """A robot's settings.

    Args:
        server: base URL of the fleet server.
        token: the robot's bearer token (from registration).
        robot_id: the robot's registered id.
        env_id: the Gymnasium environment the robot runs (None: a robot with its own control loop,
            which records with :meth:`FleetClient.episode` and passes its ``action_space``).
        spool_dir: local directory for episodes not yet acknowledged (and the current policy).
        default_behavior: what to run before a policy is published (``random``, ``maze-expert``, ...).
        default_noise: std of Gaussian noise on the default behaviour's actions (None: ``noise``).
        default_good_fraction: for ``maze-mixed``, the share of episodes heading for the real goal.
        default_fraction: once a policy is adopted, the share of episodes still run with the default
            behaviour, so the data keeps its coverage.
        noise: std of Gaussian noise added to every action of a published policy (exploration).
        seed: episode ``i`` is reset with ``seed + i``.
        max_steps: cut episodes after this many steps (None: the environment's own limit).
        control_hz: step a simulated robot at most this often, as a real control loop would (0: as fast
            as the simulator runs).
        chunk_steps: episodes longer than this are uploaded in chunks of this many transitions.
        policy_poll_s: seconds between checks for a new policy version.
        timeout_s: HTTP timeout of one request.
        backoff_s: first retry delay; it doubles per failure (with jitter) up to ``backoff_max_s``.
        max_policy_bytes: the largest policy file the robot downloads.
        allow_insecure_http: talk plain HTTP to a server that is not on loopback (tokens and data then
            travel in clear text); without it such a server is refused: use https://.
        signing_key: the server's policy signing key (``ed25519:...``, or a file holding it), as the
            robot's registration returned it. None: pin the server's key on first contact.
        shield: a shield directory (``armfarm shield fit``) that every action passes through. If it
            cannot be loaded the robot does not move: :meth:`FleetClient.act` raises, naming the problem,
            while spooled episodes still upload. A published policy that ships with its own shield
            (``armfarm fleet publish --shield``) runs behind that one instead; a version whose shipped
            shield does not load is skipped, like a corrupt policy file.
        follow_policies: poll for published policies and adopt them. False: a recorder that only uploads
            (e.g. a collector running a fixed behaviour through :meth:`FleetClient.put`); it never asks.
    """

    server: str
    token: str
    robot_id: str
    env_id: str | None
    spool_dir: str | Path
    default_behavior: str = "random"
    default_noise: float | None = None
    default_good_fraction: float = 0.5
    default_fraction: float = 0.0
    noise: float = 0.0
    seed: int = 0
    max_steps: int | None = None
    control_hz: float = 0.0
    chunk_steps: int = 10_000
    policy_poll_s: float = 5.0
    timeout_s: float = 30.0
    backoff_s: float = 0.2
    backoff_max_s: float = 10.0
    max_policy_bytes: int = 256 << 20
    allow_insecure_http: bool = False
    signing_key: str | None = None
    shield: str | Path | None = None
    follow_policies: bool = True


def check_transport(server: str, allow_insecure_http: bool) -> None:
    """Refuse plain HTTP to a server off loopback unless the user opted in by name."""
    url = httpx.URL(server)
    if url.scheme == "https" or allow_insecure_http:
        return
    host = url.host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"{server} is plain HTTP to a host off loopback: tokens and episodes would travel in clear "
                         "text; use https://, or pass allow_insecure_http (--allow-insecure-http) to accept that")


@dataclass(frozen=True)
class _Offer:
    """A downloaded policy version waiting to be adopted at the next episode."""

    version: int
    path: Path
    sha256: str
    signature: str

    def check(self, signing_key: str) -> None:
        """Raise ValueError unless the file is the one the server signed for this version."""
        if hashlib.sha256(self.path.read_bytes()).hexdigest() != self.sha256:
            raise ValueError(f"{self.path} does not match the sha256 the server published")
        verify(signing_key, self.version, self.sha256, self.signature)


class Unavailable(Exception):
    """The server could not take the upload now (unreachable, overloaded, 5xx): retry later."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(Exception):
    """The server refused the upload for good (bad data, id conflict): retrying cannot help."""


def _write_durably(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename, fsync the directory."""
    tmp = tmp_dir / f"{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


class Spool:
    """Episodes waiting for an ack: ``pending/`` (oldest first), ``rejected/``, and ``policy/``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        for sub in ("pending", "rejected", "policy", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for leftover in (self.root / "tmp").iterdir():  # an interrupted write; its episode never counted
            leftover.unlink()

    def put(self, episode_id: str, body: bytes) -> Path:
        """Durably add an encoded episode; once this returns, a crash cannot lose it."""
        path = self.root / "pending" / f"{time.time_ns():020d}-{episode_id}.episode"
        _write_durably(path, body, self.root / "tmp")
        return path

    def pending(self) -> list[Path]:
        return sorted((self.root / "pending").glob("*.episode"))

    def rejected(self) -> list[Path]:
        return sorted((self.root / "rejected").glob("*.episode"))

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def reject(self, path: Path, reason: str) -> None:
        """Move an upload the server refused to ``rejected/``, with the reason next to it."""
        target = self.root / "rejected" / path.name
        _write_durably(target.with_suffix(".reason.txt"), reason.encode(), self.root / "tmp")
        os.replace(path, target)
        fsync_path(path.parent)


class Backoff:
    """Exponential backoff with jitter: ``initial * 2**n`` capped at ``maximum``, times U(0.5, 1)."""

    def __init__(self, initial: float, maximum: float):
        self.initial, self.maximum, self.failures = initial, maximum, 0
        self._random = random.Random()

    def next(self, at_least: float | None = None) -> float:
        delay = min(self.maximum, self.initial * 2**self.failures) * self._random.uniform(0.5, 1.0)
        self.failures += 1
        return max(delay, at_least or 0.0)

    def reset(self) -> None:
        self.failures = 0


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500]


class Uploader:
    """Sends encoded episodes to the server and checks the acks (one robot, one connection)."""

    def __init__(self, http: httpx.Client, robot_id: str, chunk_steps: int):
        self.http = http
        self.robot_id = robot_id
        self.chunk_steps = chunk_steps

    def send(self, body: bytes) -> dict:
        """Upload one encoded episode (in chunks if long); return the server's ack.

        Raises:
            Unavailable: try again later. Rejected: the server refused it for good.
        """
        try:
            payload = decode(body)
        except PayloadError as e:
            raise Rejected(f"not an episode payload: {e}") from None
        url = f"/v1/robots/{self.robot_id}/episodes"
        if payload.steps <= self.chunk_steps:
            ack = self._request("POST", url, body)
        else:
            ack = None
            for i, chunk in enumerate(split(payload, self.chunk_steps)):
                ack = self._request("PUT", f"{url}/{payload.episode_id}/chunks/{i}", chunk)
                if ack.get("status") != "staged":
                    break  # the episode is stored (or was already)
            if ack is None or ack.get("status") == "staged":
                raise Unavailable(f"episode {payload.episode_id!r}: the server still misses chunks {ack}")
        meta = payload.meta
        if not meta.get("env_id") and ack.get("env_id"):  # the server recorded the robot's registered env
            meta = {**meta, "env_id": ack["env_id"]}
        expected = content_digest(payload.arrays, meta)
        if ack.get("episode_id") != payload.episode_id or ack.get("sha256") != expected:
            raise Rejected(f"episode {payload.episode_id!r}: the ack {ack} does not match the upload (sha256 {expected})")
        return ack

    def _request(self, method: str, url: str, body: bytes) -> dict:
        try:
            response = self.http.request(method, url, content=body, headers={"Content-Type": CONTENT_TYPE})
        except httpx.HTTPError as e:
            raise Unavailable(f"{method} {url}: {type(e).__name__}: {e}") from None
        if response.status_code in (200, 201, 202):
            try:
                return response.json()
            except ValueError:
                raise Unavailable(f"{method} {url}: {response.status_code} with a body that is not JSON") from None
        message = f"{method} {url}: {response.status_code} {_detail(response)}"
        if response.status_code >= 500 or response.status_code in _RETRYABLE:
            retry_after = response.headers.get("Retry-After")
            raise Unavailable(message, float(retry_after) if retry_after and retry_after.isdigit() else None)
        raise Rejected(message)


class FleetClient:
    """One robot: records episodes in its environment and keeps its spool flowing to the server.

    ``on_ack(ack)`` is called (from the upload thread) for every acknowledged episode, with the
    server's ack: ``episode_id``, ``robot_id``, ``transitions``, ``sha256``.
    """

    def __init__(self, config: ClientConfig, on_ack: Callable[[dict], None] | None = None, *,
                 action_space: gym.spaces.Box | None = None, default: Behavior | None = None):
        self.config = config
        self.on_ack = on_ack
        check_transport(config.server, config.allow_insecure_http)
        self.spool = Spool(config.spool_dir)
        self.signing_key = self._pinned_key()
        self.env = make_env(config.env_id) if config.env_id else None
        if self.env is not None and config.control_hz > 0:
            self.env = Paced(self.env, config.control_hz)
        if action_space is None:
            if self.env is None:
                raise ValueError(f"robot {config.robot_id}: give ClientConfig.env_id or the robot's action_space")
            action_space = self.env.action_space
        self.action_space = action_space
        self.http = httpx.Client(base_url=config.server, timeout=config.timeout_s,
                                 headers={"Authorization": f"Bearer {config.token}"})
        self.uploader = Uploader(self.http, config.robot_id, config.chunk_steps)
        default_noise = config.noise if config.default_noise is None else config.default_noise
        self.default_behavior = default or make_behavior(
            BehaviorSpec(config.default_behavior, default_noise, config.default_good_fraction), self.env, action_space)
        self.behavior = self.default_behavior  # what acts in the current episode
        self.guard: ShieldedPolicy | None = None  # the shield around this episode's actions, if any
        self._own_guard: ShieldedPolicy | None = None  # the robot's configured shield (``shield``)
        self._policy_guard: ShieldedPolicy | None = None  # the shield the adopted policy ships with
        self.shield_error: str | None = None  # why the configured shield could not be loaded
        self._shield_source: Path | None = None  # the directory the configured shield was loaded from
        self._load_shield()
        self.guard = self._own_guard
        self.adopted: tuple[int, Behavior] | None = None  # the newest published policy that runs here
        self.last_contact: float | None = None  # time.time() of the last answer from the server
        self.last_error: str | None = None  # why the last upload was deferred, until one succeeds
        self.actor = None if self.env is None else Actor(
            self.env, self, self, config.env_id, collector_id=config.robot_id, seed=config.seed,
            max_steps=config.max_steps)
        self.policy_version: int | None = None  # the adopted version; None: none yet
        self._episode_version: int | None = None  # the version acting in the current episode (None: default)
        self.episodes_recorded = 0
        self._policy_lock = threading.Lock()
        self._offered: _Offer | None = self._cached_policy()  # newest downloaded version
        self._tried_version: int | None = None
        self.skipped_versions: dict[int, str] = {}  # versions that failed to load here, and why
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._first_poll = threading.Event()
        self._thread = threading.Thread(target=self._network_loop, name=f"armfarm-uplink-{config.robot_id}",
                                        daemon=True)
        self._thread.start()

    def __enter__(self) -> FleetClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- acting and recording -------------------------------------------------------------------

    @property
    def policy_id(self) -> str:
        """What produced the episode being recorded: ``v<N>:<policy>`` for published version N, or
        ``default:<behaviour>`` before any policy was adopted. The store keeps it per episode."""
        if self._episode_version is None:
            return f"default:{self.behavior.policy_id}"
        return f"v{self._episode_version}:{self.behavior.policy_id}"

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode: adopt a newly published policy (at episode boundaries only) and reseed the
        behaviour's noise. The first episode waits (at most ``policy_poll_s``) for the first policy check."""
        self._first_poll.wait(self.config.policy_poll_s)
        self._adopt_offered_policy()
        if self.adopted is not None and not rng.uniform() < self.config.default_fraction:
            self._episode_version, self.behavior = self.adopted
        else:
            self._episode_version, self.behavior = None, self.default_behavior
        self.behavior.reset(rng)
        self.begin_episode()

    def act(self, obs: Any) -> np.ndarray:
        """The action of the current behaviour (the adopted policy plus exploration noise, or the default
        behaviour) for ``obs`` (a vector or the observation dict), through the shield when there is one.
        NumPy only.

        Raises:
            ShieldError: a shield is configured but could not be loaded; the robot must not move.
        """
        if self.shield_error is not None:
            raise ShieldError(f"robot {self.config.robot_id} does not move: its shield cannot be loaded: "
                              f"{self.shield_error}")
        return self.behavior(obs) if self.guard is None else self.guard(obs)

    # The shield's per-step interface (see armfarm.shield.ShieldedPolicy), so episodes record what it did.

    def _load_shield(self) -> None:
        """Load the configured shield, or reload it when the path now resolves elsewhere (a farm moves its
        ``shield`` link after each refit). A shield that fails to load stops the robot (see :meth:`act`)."""
        if self.config.shield is None:
            return
        source = Path(self.config.shield).resolve()
        if source == self._shield_source and self.shield_error is None:
            return
        try:
            self._own_guard = Shield.load(source).wrap(lambda obs: self.behavior(obs))
            self._shield_source, self.shield_error = source, None
        except ShieldError as e:
            self._own_guard, self.shield_error = None, str(e)
            log.error("robot %s will not move: its shield cannot be loaded: %s", self.config.robot_id, e)

    def begin_episode(self) -> None:
        """Start an episode behind the right shield: the one the acting published policy ships with, if
        it ships one, else the robot's configured shield (which also guards the default behaviour)."""
        self._load_shield()
        shipped = self._policy_guard if self._episode_version is not None else None
        self.guard = shipped if shipped is not None else self._own_guard
        if self.guard is not None:
            self.guard.begin_episode()

    def observe(self, reward: float, cost: float) -> None:
        """The outcome of the step just taken (the shield's watchdog watches it)."""
        if self.guard is not None:
            self.guard.observe(reward, cost)

    @property
    def last_intervention(self) -> int:
        """The shield layers that changed the last action (bit flags; 0 without a shield)."""
        return 0 if self.guard is None else self.guard.last_intervention

    @property
    def stop_reason(self) -> str:
        """Why the shield's watchdog stopped the episode, or ""."""
        return "" if self.guard is None else self.guard.stop_reason

    __call__ = act  # a client is the behaviour of its own actor

    def episode(self, seed: int | None = None) -> EpisodeRecorder:
        """Record one episode of a robot's own control loop::

            with client.episode() as ep:
                obs = robot.observe()
                while not done:
                    action = client.act(obs)
                    next_obs, reward, terminated, truncated = robot.step(action)
                    ep.add(obs, action, reward, terminated, truncated, next_obs=next_obs)
                    obs = next_obs

        On a clean exit the episode is spooled durably and uploaded like any other; if the block raises,
        nothing is spooled. An episode whose last step is neither terminated nor truncated is stored as
        truncated (the robot stopped it).
        """
        self.reset(np.random.default_rng(seed))
        return EpisodeRecorder(self, seed)

    def put(self, episode: RecordedEpisode) -> None:
        """Spool a recorded episode durably (once this returns, a crash cannot lose it) and wake the uplink."""
        arrays = wire_arrays(**{k: _canonical(v) for k, v in episode.arrays.items()})
        meta = {"episode_id": episode.episode_id, "created_at": episode.created_at,
                "policy_id": episode.policy_id, "env_id": episode.env_id, "seed": episode.seed}
        if episode.end_reason:
            meta["end_reason"] = episode.end_reason
        self.spool.put(episode.episode_id, encode(arrays, meta))
        self.episodes_recorded += 1
        self._wake.set()

    def record_episode(self) -> str:
        """Run one episode in the client's environment with the current behaviour, spool it durably, and
        return its id."""
        if self.actor is None:
            raise RuntimeError(f"robot {self.config.robot_id} has no environment (ClientConfig.env_id); record "
                               "with client.episode() from its own control loop")
        return self.actor.run_episode(self.episodes_recorded).episode_id

    def run(self, episodes: int | None = None, stop: threading.Event | None = None) -> int:
        """Record ``episodes`` episodes (None: until ``stop`` is set); return how many were recorded."""
        count = 0
        while (episodes is None or count < episodes) and not (stop is not None and stop.is_set()):
            self.record_episode()
            count += 1
        return count

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every spooled episode is acknowledged (or rejected); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        while self.spool.pending():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        """Stop uploading (the spool keeps what is not acknowledged) and release the environment."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self.http.close()
        if self.env is not None:
            self.env.close()

    # -- policies -------------------------------------------------------------------------------

    def _pinned_key(self) -> str | None:
        if self.config.signing_key is not None:
            return read_public_key(self.config.signing_key)
        pinned = self.spool.root / "policy" / "server.pub"
        return read_public_key(pinned) if pinned.is_file() else None

    def _pin_server_key(self) -> None:
        """Trust on first use: pin the key the server names (a robot registered without one)."""
        response = self.http.get("/v1/signing-key")
        response.raise_for_status()
        key = read_public_key(response.json()["signing_key"])
        _write_durably(self.spool.root / "policy" / "server.pub", (key + "\n").encode(), self.spool.root / "tmp")
        self.signing_key = key
        log.warning("robot %s: pinned the server's policy signing key %s on first use; pass the key from the "
                    "robot's registration (ClientConfig.signing_key, --signing-key) to pin it ahead",
                    self.config.robot_id, key)

    def _cached_policy(self) -> _Offer | None:
        """The policy this robot last downloaded (so it acts with it even if it starts offline)."""
        current = self.spool.root / "policy" / "current.json"
        if not current.exists():
            return None
        info = json.loads(current.read_text())
        if "signature" not in info:  # downloaded before policies were signed: fetch it again
            return None
        return _Offer(int(info["version"]), self.spool.root / "policy" / f"{info['sha256']}.npz", info["sha256"],
                      info["signature"])

    def _skip(self, version: int, reason: str) -> None:
        self.skipped_versions[version] = reason
        log.error("robot %s: cannot run policy version %d (%s); keeping the current behaviour",
                  self.config.robot_id, version, reason)

    def _adopt_offered_policy(self) -> None:
        with self._policy_lock:
            offered = self._offered
        if offered is None or offered.version == self._tried_version or self.signing_key is None:
            return  # (with no key pinned yet, a cached policy waits for the first contact)
        self._tried_version = offered.version
        try:
            offered.check(self.signing_key)  # the file as it is on disk now
            behavior = make_behavior(BehaviorSpec(str(offered.path), self.config.noise), self.env, self.action_space)
            if self.env is not None:
                behavior(self.env.observation_space.sample())  # the network fits this environment
            # A policy that ships with its shield runs behind it, or not at all: a shield that does not
            # load skips the version, like a broken policy file (the robot keeps its current pair).
            shield = unpack_shield(behavior.policy, self.spool.root / "policy" / "shields")
        except Exception as e:  # whatever a bad file does (RecursionError, MemoryError, ...): skip that version
            self._skip(offered.version, f"{type(e).__name__}: {e}")
            return
        self._policy_guard = None if shield is None else shield.wrap(lambda obs: self.behavior(obs))
        self.adopted, self.policy_version = (offered.version, behavior), offered.version
        log.info("robot %s: now acting with policy version %d (%s)", self.config.robot_id, offered.version,
                 behavior.policy_id)

    def _poll_policy(self) -> None:
        response = self.http.get("/v1/policies/latest")
        if response.status_code in (200, 404):
            self.last_contact = time.time()
        if response.status_code == 404:
            return
        response.raise_for_status()
        info = response.json()
        version = int(info["version"])
        with self._policy_lock:
            if (self._offered is not None and self._offered.version == version) or version in self.skipped_versions:
                return
        if self.signing_key is None:
            self._pin_server_key()
        try:
            verify(self.signing_key, version, info["sha256"], info.get("signature"))
        except ValueError as e:
            self._skip(version, str(e))
            return
        content = self._download(info["weights_url"], version)
        if hashlib.sha256(content).hexdigest() != info["sha256"]:
            raise ValueError(f"policy version {version}: the weights do not match their sha256")
        path = self.spool.root / "policy" / f"{info['sha256']}.npz"
        _write_durably(path, content, self.spool.root / "tmp")
        offer = _Offer(version, path, info["sha256"], info["signature"])
        current = json.dumps({"version": version, "sha256": offer.sha256, "signature": offer.signature}).encode()
        _write_durably(self.spool.root / "policy" / "current.json", current, self.spool.root / "tmp")
        with self._policy_lock:
            self._offered = offer

    def _download(self, url: str, version: int) -> bytes:
        """A policy file from the server's own origin (the token never goes elsewhere), at most
        ``max_policy_bytes`` of it."""
        target = httpx.URL(url)
        if target.is_absolute_url and (target.scheme, target.host, target.port) != (
                self.http.base_url.scheme, self.http.base_url.host, self.http.base_url.port):
            raise ValueError(f"policy version {version}: weights_url {url!r} is not on the server's origin "
                             f"{self.config.server}; refusing to send the robot's token there")
        parts, size = [], 0
        with self.http.stream("GET", url) as response:
            response.raise_for_status()
            for part in response.iter_bytes():
                size += len(part)
                if size > self.config.max_policy_bytes:
                    raise ValueError(f"policy version {version}: the weights exceed {self.config.max_policy_bytes} "
                                     "bytes (ClientConfig.max_policy_bytes)")
                parts.append(part)
        return b"".join(parts)

    # -- the uplink thread ----------------------------------------------------------------------

    def _network_loop(self) -> None:
        backoff = Backoff(self.config.backoff_s, self.config.backoff_max_s)
        next_poll = 0.0 if self.config.follow_policies else float("inf")
        if not self.config.follow_policies:
            self._first_poll.set()
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.config.policy_poll_s
                    try:
                        self._poll_policy()
                    except (httpx.HTTPError, ValueError, OSError) as e:
                        log.debug("robot %s: policy check failed: %s", self.config.robot_id, e)
                    self._first_poll.set()
                pending = self.spool.pending()
                if not pending:
                    self._wake.wait(None if next_poll == float("inf") else max(0.0, next_poll - time.monotonic()))
                    self._wake.clear()
                    continue
                delay = self._upload(pending[0], backoff)
            except Exception:  # keep the uplink alive whatever happens; the spool keeps the data
                log.exception("robot %s: uplink error", self.config.robot_id)
                delay = backoff.next()
            if delay:
                self._wake.clear()
                self._stop.wait(delay)

    def _upload(self, path: Path, backoff: Backoff) -> float:
        """Upload one spooled episode; return how long to wait before the next attempt."""
        try:
            ack = self.uploader.send(path.read_bytes())
        except Unavailable as e:
            self.last_error = str(e)
            delay = backoff.next(e.retry_after)
            log.warning("robot %s: upload of %s deferred %.1fs: %s", self.config.robot_id, path.name, delay, e)
            return delay
        except Rejected as e:
            log.error("robot %s: upload of %s rejected: %s", self.config.robot_id, path.name, e)
            self.spool.reject(path, str(e))
            return 0.0
        backoff.reset()
        self.last_contact, self.last_error = time.time(), None
        if self.on_ack is not None:
            self.on_ack(ack)
        self.spool.done(path)
        return 0.0


class EpisodeRecorder:
    """Steps of one episode of a robot's own control loop (see :meth:`FleetClient.episode`)."""

    def __init__(self, client: FleetClient, seed: int | None):
        self.client, self.seed = client, seed
        self.episode_id = uuid.uuid4().hex
        self.policy_id = client.policy_id
        self._obs: list[Any] = []
        self._actions: list[np.ndarray] = []
        self._rewards: list[float] = []
        self._terminated: list[bool] = []
        self._truncated: list[bool] = []
        self._costs: list[float] = []
        self._interventions: list[int] = []
        self.stop_reason = ""  # set when the shield's watchdog ends the episode: record no more steps
        self._last: Any = None

    def add(self, obs: Any, action: Any, reward: float, terminated: bool = False, truncated: bool = False,
            next_obs: Any = None, cost: float = 0.0) -> None:
        """Record step t: observation o_t, action a_t, reward r_t, cost c_t (damage, >= 0) and whether the
        episode ended there. ``next_obs`` (o_{t+1}) is needed for the last step only; the others take the
        next step's ``obs``. With a shield, its watchdog sees every step; when it sets :attr:`stop_reason`
        the episode ends here (truncated) and the loop must stop, so pass ``next_obs`` on every step."""
        cost = float(cost)
        if not (np.isfinite(cost) and cost >= 0):
            raise ValueError(f"episode {self.episode_id}: cost {cost} must be finite and >= 0")
        if self._terminated and (self._terminated[-1] or self._truncated[-1]):
            raise ValueError(f"episode {self.episode_id}: a step was added after the episode ended")
        self._obs.append(obs)
        discrete = isinstance(self.client.action_space, gym.spaces.Discrete)  # integer actions, as registered
        self._actions.append(np.asarray(action, np.int64 if discrete else np.float32))
        self._rewards.append(float(reward))
        self._terminated.append(bool(terminated))
        self._costs.append(cost)
        self._interventions.append(self.client.last_intervention)
        self.client.observe(float(reward), cost)
        if self.client.stop_reason and not terminated:
            truncated, self.stop_reason = True, self.client.stop_reason
        self._truncated.append(bool(truncated) and not terminated)
        self._last = next_obs

    def __enter__(self) -> EpisodeRecorder:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            log.warning("robot %s: episode %s raised; %d steps discarded", self.client.config.robot_id,
                        self.episode_id, len(self._actions))
            return
        if not self._actions:
            return
        if self._last is None:
            raise ValueError(f"episode {self.episode_id}: give next_obs with the last step (the final observation)")
        truncated = list(self._truncated)
        truncated[-1] = truncated[-1] or not self._terminated[-1]
        observations = [*self._obs, self._last]
        stacked = stack_observations(observations)
        self.client.put(RecordedEpisode(
            {"observations": stacked, "actions": np.stack(self._actions), "rewards": np.asarray(self._rewards, np.float32),
             "terminated": np.asarray(self._terminated), "truncated": np.asarray(truncated),
             "costs": np.asarray(self._costs, np.float32), "interventions": np.asarray(self._interventions, np.uint8)},
            self.episode_id, policy_id=self.policy_id, env_id=self.client.config.env_id or "", seed=self.seed,
            collector_id=self.client.config.robot_id, end_reason=self.stop_reason))


def _canonical(value: Any) -> Any:
    """Arrays as the store keeps them (floats as float32), so uploads match the registered dtypes."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    a = np.asarray(value)
    return a.astype(np.float32) if a.dtype.kind == "f" else a
