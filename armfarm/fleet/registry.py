"""The fleet's registry: robots (with their spaces and hashed tokens) and published policy versions.

Both live in the store's own index (tables ``fleet_robots`` and ``fleet_policies``, on SQLite or
PostgreSQL alike), so they survive restarts and move with the store. Policy files are kept under
``STORE/fleet/policies/<sha256>.npz``: written to ``STORE/fleet/tmp``, fsynced and renamed in
before the version row is committed, so a version number always points at a complete file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from armfarm.data import DataError, EpisodeStore, StoreSpec
from armfarm.data.schema import utc_now_iso
from armfarm.durable import fsync_path
from armfarm.fleet.auth import matches, new_robot_token, robot_token_id, token_hash
from armfarm.fleet.errors import FleetError
from armfarm.fleet.signing import SIGNING_KEY_FILE, Signer
from armfarm.policy import NumpyPolicy, PolicyFormatError
from armfarm.shield import ShieldError, unpack_shield
from armfarm.shield.bundle import shield_digest

ROBOT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"  # NAME@HOST: the store counts episodes per HOST
FLEET_DIR = "fleet"
AUTH_CACHE_S = 5.0  # how long a verified token is trusted without asking the index again

_DDL = """
CREATE TABLE IF NOT EXISTS fleet_robots (
    robot_id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    token_id TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    token_issued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_policies (
    version {serial_key},
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    config TEXT NOT NULL,
    source TEXT NOT NULL,
    published_at TEXT NOT NULL,
    signature TEXT
);
"""
_ROBOT_COLUMNS = "robot_id, env_id, spec, registered_at, token_issued_at"
_POLICY_COLUMNS = "version, sha256, bytes, config, source, published_at, signature"


@dataclass(frozen=True)
class Robot:
    """A registered robot: its environment and the spaces its episodes must have."""

    robot_id: str
    env_id: str
    spec: StoreSpec
    registered_at: str
    token_issued_at: str

    @classmethod
    def from_row(cls, row) -> Robot:
        robot_id, env_id, spec, registered_at, token_issued_at = row
        return cls(robot_id, env_id, StoreSpec.from_json(spec), registered_at, token_issued_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "robot_id": self.robot_id,
            "env_id": self.env_id,
            "spec": self.spec.to_dict(),
            "registered_at": self.registered_at,
            "token_issued_at": self.token_issued_at,
        }


@dataclass(frozen=True)
class PolicyVersion:
    """A published policy: version number, file digest and the network's configuration."""

    version: int
    sha256: str
    bytes: int
    config: dict[str, Any]
    source: str
    published_at: str
    signature: str

    @classmethod
    def from_row(cls, row) -> PolicyVersion:
        version, sha256, size, config, source, published_at, signature = row
        return cls(int(version), sha256, int(size), json.loads(config), source, published_at, signature)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "config": self.config,
            "source": self.source,
            "published_at": self.published_at,
            "signature": self.signature,
            "weights_url": f"/v1/policies/{self.version}/weights",
        }


def _misfit(policy: NumpyPolicy, spec: StoreSpec) -> str | None:
    """Why ``policy`` cannot act for robots of ``spec`` (a :class:`StoreSpec`), or None: its input size,
    and either its continuous action size or, for a ``Discrete(n, start)`` space, an argmax over ``n``
    choices numbered from ``start``."""
    choices = spec.action.num_choices
    if choices is not None:
        start = int(spec.action.low)
        if policy.output != "argmax" or policy.act_dim != choices or policy.action_offset != start:
            what = (f"picks one of {policy.act_dim} actions from {policy.action_offset}" if policy.output == "argmax"
                    else f"outputs {policy.act_dim} continuous actions")
            return f"the policy {what}, but the fleet's robots act in Discrete({choices}, start={start})"
    elif policy.output != "tanh" or policy.act_dim != spec.act_dim:
        what = "picks discrete actions" if policy.output == "argmax" else f"outputs {policy.act_dim} actions"
        return f"the policy {what}, but the fleet's robots take {spec.act_dim} continuous actions"
    if policy.obs_dim != spec.obs_dim:
        return (f"the policy reads {policy.obs_dim} observation features, but the fleet's robots observe "
                f"{spec.obs_dim}")
    return None


def policy_config(policy: NumpyPolicy) -> dict[str, Any]:
    """What a robot needs to know about a policy before running it (the weights hold the rest)."""
    return {
        "format": "armfarm-numpy-policy",
        "obs_dim": policy.obs_dim,
        "act_dim": policy.act_dim,
        "hidden_sizes": [int(w.shape[1]) for w in policy.weights[:-1]],
        "hidden_activation": "relu",
        "output_activation": "tanh",
        "obs_keys": policy.obs_keys,
        "normalize_obs": policy.obs_mean is not None,
        "rescale_actions": policy.action_low is not None,
        "metadata": policy.metadata,
        "shield": None if not policy.shield_files else shield_digest(policy.shield_files),
    }


class Registry:
    """Robots and policy versions of the fleet writing into ``store``.

    ``signing_key_file`` holds the key that signs published versions (default
    ``STORE/fleet/signing.key``, made on first use if missing; see :mod:`armfarm.fleet.signing`).
    """

    def __init__(self, store: EpisodeStore, signing_key_file: str | os.PathLike | None = None):
        self.store = store
        self.dir = store.path / FLEET_DIR
        for sub in ("policies", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        store.index.ensure_tables(_DDL)
        store.index.ensure_column("fleet_policies", "signature", "TEXT")
        self.signing_key_file = Path(signing_key_file or store.path / SIGNING_KEY_FILE)
        self._verified: dict[str, tuple[float, str, str]] = {}  # token_id -> (expiry, hash, robot_id)
        self._robots: dict[str, Robot] = {}  # registrations never change, so they are cached for good

    # -- robots ---------------------------------------------------------------------------------

    def register(self, robot_id: str, env_id: str, spec: StoreSpec) -> tuple[Robot, str]:
        """Register a robot with the spaces of its environment; return it and its new token.

        Raises:
            FleetError: 409 if the robot exists or its spaces differ from the fleet's.
        """
        try:
            self.store.bind_spec(spec)
        except DataError as e:
            raise FleetError(
                409,
                f"robot {robot_id!r}: field '{e.field}': {e.message}; every robot of a fleet shares "
                "one observation and action layout (serve another store for this environment)",
            ) from None
        token, token_id = new_robot_token()
        now = utc_now_iso()
        with self.store.index.transaction(write=True) as cur:
            if cur.execute("SELECT 1 FROM fleet_robots WHERE robot_id = ?", (robot_id,)).fetchone():
                raise FleetError(
                    409,
                    f"robot {robot_id!r} is already registered; issue it a new token with "
                    f"POST /v1/robots/{robot_id}/token",
                )
            twin = cur.execute("SELECT robot_id FROM fleet_robots WHERE lower(robot_id) = ?",
                               (robot_id.lower(),)).fetchone()
            if twin:  # they would share staging directories on a case-insensitive filesystem
                raise FleetError(409, f"robot {robot_id!r} differs only in case from the registered robot "
                                 f"{twin[0]!r}; robot ids must differ in more than case")
            cur.execute(
                "INSERT INTO fleet_robots (robot_id, env_id, spec, token_id, token_hash, registered_at, "
                "token_issued_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (robot_id, env_id, spec.to_json(), token_id, token_hash(token), now, now),
            )
        return Robot(robot_id, env_id, spec, now, now), token

    def rotate_token(self, robot_id: str) -> tuple[Robot, str]:
        """Issue ``robot_id`` a new token; the old one stops working at once (on this server)."""
        token, token_id = new_robot_token()
        with self.store.index.transaction(write=True) as cur:
            row = cur.execute("SELECT token_id FROM fleet_robots WHERE robot_id = ?", (robot_id,)).fetchone()
            if row is None:
                raise FleetError(404, f"no robot {robot_id!r} is registered")
            cur.execute(
                "UPDATE fleet_robots SET token_id = ?, token_hash = ?, token_issued_at = ? WHERE robot_id = ?",
                (token_id, token_hash(token), utc_now_iso(), robot_id),
            )
        self._verified.pop(row[0], None)
        return self.robot(robot_id), token

    def deregister(self, robot_id: str) -> bool:
        """Remove ``robot_id``'s registration (its token stops working; its stored episodes stay).

        When it was the last robot and the store holds no episode yet, the store's spec is released too,
        so a registration with wrong spaces can be corrected by registering again. Returns whether it was.
        """
        with self.store.index.transaction(write=True) as cur:
            row = cur.execute("SELECT token_id FROM fleet_robots WHERE robot_id = ?", (robot_id,)).fetchone()
            if row is None:
                raise FleetError(404, f"no robot {robot_id!r} is registered")
            cur.execute("DELETE FROM fleet_robots WHERE robot_id = ?", (robot_id,))
            last = cur.execute("SELECT 1 FROM fleet_robots LIMIT 1").fetchone() is None
            released = last and self.store.release_spec(cur)
        self._verified.pop(row[0], None)
        self._robots.pop(robot_id, None)
        return released

    def robot(self, robot_id: str) -> Robot:
        """The registered robot ``robot_id``; 404 if there is none."""
        with self.store.index.transaction() as cur:
            row = cur.execute(f"SELECT {_ROBOT_COLUMNS} FROM fleet_robots WHERE robot_id = ?", (robot_id,)).fetchone()
        if row is None:
            raise FleetError(404, f"no robot {robot_id!r} is registered")
        return Robot.from_row(row)

    def cached_robot(self, robot_id: str) -> Robot:
        """Like :meth:`robot`, from memory after the first call (for the upload path)."""
        robot = self._robots.get(robot_id)
        if robot is None:
            robot = self._robots[robot_id] = self.robot(robot_id)
        return robot

    def robots(self) -> list[Robot]:
        with self.store.index.transaction() as cur:
            rows = cur.execute(f"SELECT {_ROBOT_COLUMNS} FROM fleet_robots ORDER BY robot_id").fetchall()
        return [Robot.from_row(r) for r in rows]

    def authenticate(self, token: str, cached_only: bool = False) -> str | None:
        """The id of the robot whose token this is, or None.

        With ``cached_only``, answer from memory alone (None when the token was not verified recently).
        """
        token_id = robot_token_id(token)
        if token_id is None:
            return None
        cached = self._verified.get(token_id)
        if cached is None or cached[0] < time.monotonic():
            if cached_only:
                return None
            with self.store.index.transaction() as cur:
                row = cur.execute(
                    "SELECT token_hash, robot_id FROM fleet_robots WHERE token_id = ?", (token_id,)
                ).fetchone()
            if row is None:
                return None
            cached = (time.monotonic() + AUTH_CACHE_S, row[0], row[1])
            self._verified[token_id] = cached
        _, stored_hash, robot_id = cached
        return robot_id if matches(token, stored_hash) else None

    # -- policies -------------------------------------------------------------------------------

    @functools.cached_property
    def signer(self) -> Signer:
        """The private key, loaded (or made) on first use, so registries that only read make no key."""
        return Signer(self.signing_key_file)

    @property
    def signing_key(self) -> str:
        """The public key robots pin (``ed25519:...``)."""
        return self.signer.public_key

    def sign_unsigned(self) -> None:
        """Sign the versions published before policies were signed (the server does it at start)."""
        with self.store.index.transaction(write=True) as cur:
            rows = cur.execute("SELECT version, sha256 FROM fleet_policies WHERE signature IS NULL").fetchall()
            for version, sha256 in rows:
                cur.execute("UPDATE fleet_policies SET signature = ? WHERE version = ?",
                            (self.signer.sign(int(version), sha256), version))

    def publish(self, data: bytes, source: str) -> PolicyVersion:
        """Check a ``policy.npz`` and make it the newest version.

        Raises:
            FleetError: 422 if it is not a NumPy policy, or does not fit the fleet's spaces.
        """
        digest = hashlib.sha256(data).hexdigest()
        tmp = self.dir / "tmp" / f"{uuid.uuid4().hex}.npz"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                policy = NumpyPolicy.load(tmp)
            except PolicyFormatError as e:
                raise FleetError(422, f"not an armfarm NumPy policy: {str(e).replace(str(tmp), 'the upload')}") from None
            if policy.shield_files:  # a policy that ships with its shield: the shield must load and fit
                with tempfile.TemporaryDirectory(dir=self.dir / "tmp") as unpacked:
                    try:
                        unpack_shield(policy, unpacked)
                    except ShieldError as e:
                        message = str(e).replace(unpacked, "the upload's shield")
                        raise FleetError(422, f"the policy's shield cannot be used: {message}") from None
            spec = self.store.spec
            misfit = None if spec is None else _misfit(policy, spec)
            if misfit is not None:
                raise FleetError(422, misfit)
            os.replace(tmp, self.policy_path(digest))
        finally:
            tmp.unlink(missing_ok=True)
        fsync_path(self.dir / "policies")
        config = policy_config(policy)
        now = utc_now_iso()
        with self.store.index.transaction(write=True) as cur:
            version = int(cur.execute(
                "INSERT INTO fleet_policies (sha256, bytes, config, source, published_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING version",
                (digest, len(data), json.dumps(config, sort_keys=True), source, now),
            ).fetchone()[0])
            signature = self.signer.sign(version, digest)
            cur.execute("UPDATE fleet_policies SET signature = ? WHERE version = ?", (signature, version))
        return PolicyVersion(version, digest, len(data), config, source, now, signature)

    def latest_policy(self) -> PolicyVersion | None:
        """The newest published policy, or None before the first."""
        with self.store.index.transaction() as cur:
            row = cur.execute(f"SELECT {_POLICY_COLUMNS} FROM fleet_policies ORDER BY version DESC LIMIT 1").fetchone()
        return None if row is None else PolicyVersion.from_row(row)

    def policy(self, version: int) -> PolicyVersion:
        """Policy ``version``; 404 if there is none."""
        with self.store.index.transaction() as cur:
            row = cur.execute(f"SELECT {_POLICY_COLUMNS} FROM fleet_policies WHERE version = ?", (version,)).fetchone()
        if row is None:
            raise FleetError(404, f"no policy version {version} has been published")
        return PolicyVersion.from_row(row)

    def policies(self) -> list[PolicyVersion]:
        with self.store.index.transaction() as cur:
            rows = cur.execute(f"SELECT {_POLICY_COLUMNS} FROM fleet_policies ORDER BY version").fetchall()
        return [PolicyVersion.from_row(r) for r in rows]

    def policy_path(self, digest: str) -> Path:
        """Where the policy file with SHA-256 ``digest`` is kept."""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"not a SHA-256 digest: {digest!r}")
        return self.dir / "policies" / f"{digest}.npz"
