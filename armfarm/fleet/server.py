"""The fleet server: a FastAPI app over one episode store (``armfarm serve STORE``).

(No ``from __future__ import annotations`` here: FastAPI resolves the route signatures at runtime.)

Endpoints (the full description is served at ``/openapi.json``)::

    GET  /healthz                                              no token
    POST /v1/robots                                            admin    register a robot -> its token
    GET  /v1/robots                                            admin
    GET  /v1/robots/{robot_id}                                 admin or that robot
    DELETE /v1/robots/{robot_id}                               admin    remove a registration (to correct it)
    POST /v1/robots/{robot_id}/token                           admin    rotate the robot's token
    POST /v1/robots/{robot_id}/episodes                        robot    upload a whole episode -> ack
    PUT  /v1/robots/{robot_id}/episodes/{episode_id}/chunks/{index}   robot   upload a chunk
    POST /v1/policies                                          admin    publish a policy.npz -> version
    GET  /v1/signing-key                                       any token  the key policies are signed with
    GET  /v1/policies, /v1/policies/latest, /v1/policies/{version}    any token
    GET  /v1/policies/{version}/weights                        any token  the policy.npz

Every refusal is a 4xx with ``{"detail": "<what was wrong>"}`` and stores nothing.
"""

import contextlib
import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from starlette.concurrency import run_in_threadpool

from armfarm import __version__
from armfarm.data import DataError, EpisodeStore, StoreSpec
from armfarm.fleet.admission import Admission
from armfarm.fleet.auth import ADMIN_TOKEN_FILE, Principal, load_or_create_admin_token, matches, token_hash
from armfarm.fleet.dashboard import dashboard_router
from armfarm.fleet.errors import FleetError
from armfarm.fleet.ingest import Ack, Ingest
from armfarm.fleet.limits import BodyLimit, RateLimiter, retry_after_header
from armfarm.fleet.payload import CONTENT_TYPE, ID_PATTERN
from armfarm.fleet.registry import FLEET_DIR, ROBOT_ID_PATTERN, Registry
from armfarm.fleet.staging import ChunkStaging

log = logging.getLogger("armfarm.fleet.server")

_DTYPES = Literal["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                  "float16", "float32", "float64"]
_MAX_SPEC_ELEMENTS = 1 << 24
MAX_EPISODE_PAGE = 10_000  # rows per GET /v1/episodes page


@dataclass
class ServerConfig:
    """How to serve a store.

    Args:
        store: the episode store (created if missing).
        index_url: index of a new store (``sqlite`` or ``postgresql://...``; see armfarm.data.index).
        admin_token_file: the admin token file (default ``STORE/admin.token``; created if missing).
        max_request_bytes: largest request body (413 above).
        max_episode_steps: longest episode, in transitions, whole or assembled from chunks (413 above).
        rate_limit, rate_burst: requests per second per token on average, and at once (429 above; 0: off).
        max_staged_bytes: chunks of unfinished episodes one robot may keep staged (413 above).
        staging_ttl_s: chunks untouched this long are removed when the server starts.
        max_json_bytes: largest JSON or form body (registrations, logins), separately from uploads (413).
        body_read_timeout_s: a body that stalls this long between two parts is refused (408).
        max_in_flight: requests one caller (robot or admin) may have in flight at once (429 above).
        unauthenticated_rate, unauthenticated_burst: requests per second per client address that fail
            authentication (429 above), so tokens cannot be guessed quickly.
        staging_sweep_s: how often, while running, chunks untouched for ``staging_ttl_s`` are removed.
        max_staged_files: chunk files one robot may keep staged (413 above).
        max_staged_bytes_total: staged chunks of all robots together, in disk blocks (507 above).
        min_free_bytes: /healthz reports the store unhealthy below this much free disk.
        docs: serve Swagger UI at /docs (it loads its script and style from a CDN, so it is off by default;
            /openapi.json is always served).
        signing_key_file: the Ed25519 key that signs published policies (default
            ``STORE/fleet/signing.key``; made with mode 0600 if missing; see armfarm.fleet.signing).
        extra_status: called for each /v1/dashboard answer to add a view of what the fleet belongs to
            (``armfarm serve --farm`` passes the farm's status: rounds, learner, components).
    """

    store: Path
    index_url: str | None = None
    admin_token_file: Path | None = None
    max_request_bytes: int = 64 << 20
    max_episode_steps: int = 1_000_000
    rate_limit: float = 100.0
    rate_burst: int = 200
    max_staged_bytes: int = 1 << 30
    staging_ttl_s: float = 7 * 24 * 3600.0
    extra_status: Callable[[], dict] | None = None
    max_json_bytes: int = 1 << 20
    body_read_timeout_s: float = 30.0
    max_in_flight: int = 8
    unauthenticated_rate: float = 5.0
    unauthenticated_burst: int = 20
    staging_sweep_s: float = 600.0
    max_staged_files: int = 10_000
    max_staged_bytes_total: int = 8 << 30
    min_free_bytes: int = 64 << 20
    docs: bool = False
    signing_key_file: Path | None = None


# -- request and response bodies ---------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ArraySpecBody(_Strict):
    shape: list[Annotated[int, Field(ge=1, le=1 << 20)]] = Field(max_length=8)
    dtype: _DTYPES
    low: list[Any] | int | float | None = None  # a number for a scalar (a Discrete space's first action)
    high: list[Any] | int | float | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if math.prod(self.shape) > _MAX_SPEC_ELEMENTS:  # exact integers: np.prod wraps around at 2**63
            raise ValueError(f"shape {self.shape} has more than {_MAX_SPEC_ELEMENTS} elements")
        if (self.low is None) != (self.high is None):
            raise ValueError("give both low and high, or neither")
        for name in ("low", "high"):
            bounds = getattr(self, name)
            if bounds is None:
                continue
            try:
                values = np.asarray(bounds, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be nested lists of numbers") from None
            if values.shape != tuple(self.shape) or not np.isfinite(values).all():
                raise ValueError(f"{name} must be finite numbers of shape {self.shape}")
        return self


class DictObservationBody(_Strict):
    keys: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")], ArraySpecBody] = Field(
        alias="dict", min_length=1, max_length=64
    )


class SpecBody(_Strict):
    """The layout of a robot's episodes, as ``StoreSpec.to_dict()`` writes it."""

    observation: Annotated[
        Annotated[ArraySpecBody, Tag("array")] | Annotated[DictObservationBody, Tag("dict")],
        Discriminator(lambda v: "dict" if isinstance(v, dict) and "dict" in v else "array"),
    ]
    action: ArraySpecBody

    def to_spec(self) -> StoreSpec:
        return StoreSpec.from_json(self.model_dump(by_alias=True, exclude_none=True))


class RegisterBody(_Strict):
    robot_id: str = Field(pattern=ROBOT_ID_PATTERN, description="Unique name of the robot.")
    env_id: str = Field(min_length=1, max_length=256, description="The robot's environment, e.g. Hopper-v5.")
    spec: SpecBody

    @field_validator("env_id")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("must be printable")
        return value


class RobotOut(BaseModel):
    robot_id: str
    env_id: str
    spec: dict[str, Any]
    registered_at: str
    token_issued_at: str


class RobotTokenOut(RobotOut):
    token: str = Field(description="The robot's bearer token; shown only now.")
    signing_key: str = Field(description="The public key published policies are signed with (ed25519:...); "
                             "the robot pins it and runs only policies it verifies.")


class DeregisteredOut(BaseModel):
    robot_id: str
    spec_released: bool = Field(description="Whether the store's spaces were released too (it was the last "
                                "robot and the store holds no episode), so the next registration binds them anew.")
    staged_uploads_discarded: int


class SigningKeyOut(BaseModel):
    signing_key: str = Field(description="ed25519:<base64url of the 32-byte public key>")


class AckOut(BaseModel):
    episode_id: str
    robot_id: str
    transitions: int
    sha256: str = Field(description="SHA-256 of the episode's content, as the store holds it.")
    env_id: str = Field(description="The environment the store records: the upload's, or the robot's "
                        "registered one where the upload named none (the digest covers it).")


class EpisodeOut(BaseModel):
    episode_id: str
    robot_id: str = Field(description="The robot that uploaded it (the store's collector_id).")
    env_id: str
    policy_id: str
    seed: int | None
    transitions: int
    episode_return: float
    cost_return: float
    created_at: str
    seq: int = Field(description="Its commit number: episodes are listed in commit order.")


class EpisodePageOut(BaseModel):
    episodes: list[EpisodeOut]
    next: int | None = Field(description="Pass as ``after`` for the next page; null on the last page.")


class StagedOut(BaseModel):
    status: Literal["staged"]
    episode_id: str
    chunk: int
    missing: list[int] | None = Field(description="Chunks still needed (the lowest 100 at most); null until the final chunk arrived.")


class PolicyOut(BaseModel):
    version: int
    sha256: str
    bytes: int
    config: dict[str, Any]
    source: str
    published_at: str
    signature: str = Field(description="Ed25519 signature (base64url) of the version number and sha256.")
    weights_url: str


class HealthOut(BaseModel):
    status: str
    armfarm_version: str


class ErrorOut(BaseModel):
    detail: str
    errors: list[dict[str, Any]] | None = None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


_AUTH = (401, 403, 429)
_BINARY_BODY = {
    "requestBody": {
        "required": True,
        "content": {CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}
RobotId = Annotated[str, PathParam(pattern=ROBOT_ID_PATTERN)]
EpisodeId = Annotated[str, PathParam(pattern=ID_PATTERN.pattern)]


# -- the app -----------------------------------------------------------------------------------------


class Fleet:
    """The server's state: the store, its registry, ingest and limits, and the admin token's hash."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.store = EpisodeStore(config.store, create=True, index_url=config.index_url)
        self.admin_token_path = config.admin_token_file or self.store.path / ADMIN_TOKEN_FILE
        admin_token, self.admin_token_created = load_or_create_admin_token(self.admin_token_path)
        self.admin_hash = token_hash(admin_token)
        self.registry = Registry(self.store, config.signing_key_file)
        self.registry.sign_unsigned()  # makes the signing key if there is none yet
        staging = ChunkStaging(self.store.path / FLEET_DIR / "uploads", config.max_staged_bytes,
                               config.max_staged_files, config.max_staged_bytes_total)
        self.staging = staging
        self.expire_staged()
        for name in self.store.collect_garbage():
            log.info("removed leftover of an interrupted write %s", name)
        self.ingest = Ingest(self.registry, staging, config.max_episode_steps)
        self.limiter = RateLimiter(config.rate_limit, config.rate_burst)
        self._sweeping = threading.Event()

    def expire_staged(self) -> None:
        for name in self.staging.expire(self.config.staging_ttl_s):
            log.info("removed abandoned chunked upload %s", name)

    def sweep_staged(self) -> None:
        """Expire abandoned chunked uploads every ``staging_sweep_s`` while the server runs."""
        while not self._sweeping.wait(self.config.staging_sweep_s):
            try:
                self.expire_staged()
            except OSError as e:
                log.warning("could not expire staged chunks: %s", e)

    def storage_problem(self) -> str | None:
        """Why the store cannot take writes now (read-only, or below the free-space floor), or None."""
        path = self.store.path
        if not os.access(path, os.W_OK) or not os.access(path / "shards", os.W_OK):
            return f"the store {path} is not writable"
        try:
            stat = os.statvfs(path)
        except OSError as e:
            return f"cannot read the free space of {path}: {e}"
        free = stat.f_bavail * stat.f_frsize
        if free < self.config.min_free_bytes:
            return (f"the store's disk has {free >> 20} MiB free, below the floor of "
                    f"{self.config.min_free_bytes >> 20} MiB")
        return None

    async def authenticate(self, token: str) -> Principal:
        """Who holds ``token`` (401 if nobody), after charging the caller's rate limit (429)."""
        if matches(token, self.admin_hash):
            principal = Principal()
        else:
            robot_id = self.registry.authenticate(token, cached_only=True)
            if robot_id is None:  # not verified recently: ask the index, off the event loop
                robot_id = await run_in_threadpool(self.registry.authenticate, token)
            if robot_id is None:
                raise FleetError(401, "invalid token: unknown, rotated or mistyped",
                                 {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            principal = Principal(robot_id)
        wait = self.limiter.retry_after(str(principal))
        if wait is not None:
            raise FleetError(
                429,
                f"{principal} exceeds the rate limit of {self.limiter.rate:g} requests/s "
                f"(burst {self.limiter.burst}); retry after the Retry-After seconds",
                retry_after_header(wait),
            )
        return principal


def create_app(config: ServerConfig) -> FastAPI:
    """The fleet server for ``config.store`` (created if missing), ready for uvicorn.

    The store, its registry tables and the admin token file are set up here, before serving, so
    configuration errors surface at once. Raises DataError or ValueError for such errors.
    """
    fleet = Fleet(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        fleet.ingest.committer.start()
        sweeper = threading.Thread(target=fleet.sweep_staged, name="armfarm-staging-sweep", daemon=True)
        sweeper.start()
        yield
        fleet._sweeping.set()
        fleet.ingest.committer.close()

    app = FastAPI(
        title="armfarm fleet",
        version=__version__,
        description="Robots upload episodes into a durable episode store and pull published policies. "
        "Every endpoint except /healthz needs `Authorization: Bearer <token>`: the admin token "
        "(STORE/admin.token) or a robot's token.",
        lifespan=lifespan,
        redoc_url=None,
        docs_url="/docs" if config.docs else None,  # Swagger UI loads its script from a CDN: off by default
    )
    app.state.fleet = fleet
    app.add_middleware(BodyLimit, max_bytes=config.max_request_bytes, max_json_bytes=config.max_json_bytes,
                       read_timeout_s=config.body_read_timeout_s)
    app.add_middleware(Admission, fleet=fleet, max_in_flight=config.max_in_flight,
                       unauthenticated=RateLimiter(config.unauthenticated_rate, config.unauthenticated_burst))
    app.include_router(dashboard_router(fleet, config.extra_status, _errors(*_AUTH)))
    bearer = HTTPBearer(auto_error=False, description="The admin token or a robot token.")

    @app.exception_handler(FleetError)
    async def _fleet_error(request: Request, exc: FleetError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(part) for part in e.get("loc", ())],
                   "msg": str(e.get("msg")) + (f" ({e['ctx']['error']})" if e.get("type") == "json_invalid" else ""),
                   "type": str(e.get("type"))} for e in exc.errors()]
        detail = "; ".join(f"field '{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in errors)
        return JSONResponse({"detail": f"invalid request: {detail}", "errors": errors}, 422)

    @app.exception_handler(DataError)
    async def _store_error(request: Request, exc: DataError) -> JSONResponse:
        log.error("store error: %s", exc)
        return JSONResponse({"detail": f"the store is unavailable ({exc.message}); retry later"}, 503,
                            headers=retry_after_header(1))

    async def principal(request: Request,
                        credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
        admitted = request.scope.get("state", {}).get("principal")
        if admitted is not None:  # authenticated (and charged) by Admission before the body was read
            return admitted
        if credentials is None:
            raise FleetError(401, "missing token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"})
        return await fleet.authenticate(credentials.credentials)

    Caller = Annotated[Principal, Depends(principal)]

    def admin_only(caller: Principal, action: str) -> None:
        if not caller.is_admin:
            raise FleetError(403, f"{caller} may not {action}: that needs the admin token")

    async def robot_itself(robot_id: RobotId, caller: Caller) -> Principal:
        """The caller, if it is the robot named in the path (checked before any body is read)."""
        if caller.is_admin:
            raise FleetError(403, f"episodes come from robots: upload with robot {robot_id!r}'s token, not the admin token")
        if caller.robot_id != robot_id:
            raise FleetError(403, f"this token belongs to robot {caller.robot_id!r}, not {robot_id!r}")
        return caller

    TheRobot = Annotated[Principal, Depends(robot_itself)]

    async def publisher(caller: Caller) -> Principal:
        """The caller, if it is the admin (checked before the policy file is read)."""
        admin_only(caller, "publish policies")
        return caller

    async def read_body(request: Request) -> bytes:
        return await request.body()

    async def chunk_index(robot_id: RobotId, episode_id: EpisodeId, index: Annotated[int, PathParam(ge=0, lt=2**31)]) -> None:
        """Refuse an impossible chunk index before the chunk's body is read."""
        fleet.ingest.check_chunk_index(robot_id, episode_id, index)

    @app.get("/healthz", response_model=HealthOut, responses=_errors(503), tags=["health"])
    def healthz() -> dict:
        """Liveness and readiness: 200 while the store's index answers and the store can be written
        (writable, and above the free-space floor); 503 naming the problem otherwise."""
        try:
            with fleet.store.index.transaction() as cur:
                cur.execute("SELECT 1").fetchone()
        except DataError as e:
            raise FleetError(503, f"the store's index does not answer ({e.message})") from None
        problem = fleet.storage_problem()
        if problem is not None:
            raise FleetError(503, f"{problem}; uploads would fail", retry_after_header(30))
        return {"status": "ok", "armfarm_version": __version__}

    @app.post("/v1/robots", status_code=201, response_model=RobotTokenOut, responses=_errors(*_AUTH, 400, 409, 413, 422),
              tags=["robots"])
    def register(body: RegisterBody, caller: Caller) -> dict:
        """Register a robot with its environment's spaces; returns its token (shown once)."""
        admin_only(caller, "register robots")
        try:
            spec = body.spec.to_spec()
        except DataError as e:
            raise FleetError(422, f"robot {body.robot_id!r}: invalid spec: {e.message}") from None
        robot, token = fleet.registry.register(body.robot_id, body.env_id, spec)
        return {**robot.to_json(), "token": token, "signing_key": fleet.registry.signing_key}

    @app.get("/v1/robots", response_model=list[RobotOut], responses=_errors(*_AUTH), tags=["robots"])
    def robots(caller: Caller) -> list[dict]:
        """All registered robots."""
        admin_only(caller, "list robots")
        return [r.to_json() for r in fleet.registry.robots()]

    @app.get("/v1/robots/{robot_id}", response_model=RobotOut, responses=_errors(*_AUTH, 404, 422), tags=["robots"])
    def robot(robot_id: RobotId, caller: Caller) -> dict:
        """One robot's registration (for the admin or the robot itself)."""
        if not caller.is_admin and caller.robot_id != robot_id:
            raise FleetError(403, f"{caller} may not read robot {robot_id!r}")
        return fleet.registry.robot(robot_id).to_json()

    @app.delete("/v1/robots/{robot_id}", response_model=DeregisteredOut, responses=_errors(*_AUTH, 404, 422),
                tags=["robots"])
    def deregister(robot_id: RobotId, caller: Caller) -> dict:
        """Remove a robot's registration, to correct a bad one: its token stops working, its unfinished
        chunked uploads are discarded, its stored episodes stay. If it was the last robot and the store
        holds no episode, the store's spaces are released, so registering again can fix wrong spaces."""
        admin_only(caller, "remove robots")
        released = fleet.registry.deregister(robot_id)
        discarded = fleet.staging.discard_robot(robot_id)
        log.info("robot %s deregistered (spec released: %s)", robot_id, released)
        return {"robot_id": robot_id, "spec_released": released, "staged_uploads_discarded": discarded}

    @app.post("/v1/robots/{robot_id}/token", response_model=RobotTokenOut, responses=_errors(*_AUTH, 404, 422),
              tags=["robots"])
    def rotate(robot_id: RobotId, caller: Caller) -> dict:
        """Issue a robot a new token; the old one stops working."""
        admin_only(caller, "issue tokens")
        robot, token = fleet.registry.rotate_token(robot_id)
        return {**robot.to_json(), "token": token, "signing_key": fleet.registry.signing_key}

    @app.post("/v1/robots/{robot_id}/episodes", response_model=AckOut, openapi_extra=_BINARY_BODY,
              responses=_errors(*_AUTH, 404, 409, 413, 422, 503), tags=["episodes"])
    async def upload(robot_id: RobotId, caller: TheRobot, body: Annotated[bytes, Depends(read_body)]) -> dict:
        """Upload a whole episode (the binary format of armfarm.fleet.payload).

        Answers only once the episode is durably committed to the store. A retry of a stored episode
        gets the same ack; an id stored by another robot, or with other content, gets 409.
        """
        return (await fleet.ingest.upload(robot_id, body)).to_json()

    @app.get("/v1/episodes", response_model=EpisodePageOut, responses=_errors(*_AUTH, 422), tags=["episodes"])
    def episodes(caller: Caller,
                 prefix: Annotated[str, Query(max_length=128, pattern=r"^[A-Za-z0-9._:-]*$",
                                              description="Only episodes whose id starts with this.")] = "",
                 after: Annotated[int, Query(ge=0, lt=2**63, description="List from the episode after this "
                                             "commit number (a page's ``next``).")] = 0,
                 limit: Annotated[int, Query(ge=1, le=MAX_EPISODE_PAGE)] = 1000) -> dict:
        """Stored episodes, in commit order, a page at a time: what an operator or a collector that lost its
        own record of its acks (a restarted Ray collector) asks to know what the store already holds."""
        admin_only(caller, "list episodes")
        rows = fleet.store.records_page(prefix, after, limit + 1)
        page = [{"episode_id": r.episode_id, "robot_id": r.collector_id, "env_id": r.env_id, "policy_id": r.policy_id,
                 "seed": r.seed, "transitions": r.length, "episode_return": r.episode_return,
                 "cost_return": r.cost_return, "created_at": r.created_at, "seq": r.seq} for r in rows[:limit]]
        return {"episodes": page, "next": page[-1]["seq"] if len(rows) > limit else None}

    @app.put("/v1/robots/{robot_id}/episodes/{episode_id}/chunks/{index}", response_model=AckOut,
             openapi_extra=_BINARY_BODY, responses={202: {"model": StagedOut},
                                                    **_errors(*_AUTH, 404, 409, 413, 422, 503)},
             tags=["episodes"])
    async def upload_chunk(robot_id: RobotId, episode_id: EpisodeId, index: Annotated[int, PathParam(ge=0, lt=2**31)],
                           caller: TheRobot, _index_ok: Annotated[None, Depends(chunk_index)],
                           body: Annotated[bytes, Depends(read_body)]) -> Any:
        """Upload chunk ``index`` of a long episode, in any order; chunks are staged durably.

        202 while chunks are missing; 200 with the episode's ack once the final chunk and all before
        it are here and the assembled episode is committed. Staged chunks are never visible in the store.
        """
        result = await fleet.ingest.upload_chunk(robot_id, episode_id, index, body)
        if isinstance(result, Ack):
            return result.to_json()
        return JSONResponse(result.to_json(), 202)

    @app.post("/v1/policies", status_code=201, response_model=PolicyOut, openapi_extra=_BINARY_BODY,
              responses=_errors(*_AUTH, 413, 422), tags=["policies"])
    async def publish(caller: Annotated[Principal, Depends(publisher)], body: Annotated[bytes, Depends(read_body)],
                      source: Annotated[str, Query(max_length=256, description="Where it came from, e.g. a run dir.")] = "",
                      ) -> dict:
        """Publish a policy.npz (from ``armfarm train``) as the newest version robots will fetch."""
        return (await run_in_threadpool(fleet.registry.publish, body, source)).to_json()

    @app.get("/v1/signing-key", response_model=SigningKeyOut, responses=_errors(*_AUTH), tags=["policies"])
    def signing_key(caller: Caller) -> dict:
        """The public key every published policy is signed with. Pin it at registration (it comes with
        the robot's token); fetching it here trusts this connection."""
        return {"signing_key": fleet.registry.signing_key}

    @app.get("/v1/policies", response_model=list[PolicyOut], responses=_errors(*_AUTH), tags=["policies"])
    def policies(caller: Caller) -> list[dict]:
        """All published policy versions, oldest first."""
        return [p.to_json() for p in fleet.registry.policies()]

    @app.get("/v1/policies/latest", response_model=PolicyOut, responses=_errors(*_AUTH, 404), tags=["policies"])
    def latest(caller: Caller) -> dict:
        """The current policy: version, digest and network configuration (404 before the first)."""
        policy = fleet.registry.latest_policy()
        if policy is None:
            raise FleetError(404, "no policy has been published yet; robots act with their default behaviour")
        return policy.to_json()

    @app.get("/v1/policies/{version}", response_model=PolicyOut, responses=_errors(*_AUTH, 404, 422),
             tags=["policies"])
    def policy(version: Annotated[int, PathParam(ge=1, lt=2**63)], caller: Caller) -> dict:
        """One policy version."""
        return fleet.registry.policy(version).to_json()

    @app.get("/v1/policies/{version}/weights", response_class=FileResponse,
             responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
                        **_errors(*_AUTH, 404, 422)}, tags=["policies"])
    def weights(version: Annotated[int, PathParam(ge=1, lt=2**63)], caller: Caller) -> FileResponse:
        """The policy.npz of a version: runs with NumPy alone (``armfarm.policy.NumpyPolicy.load``)."""
        policy = fleet.registry.policy(version)
        return FileResponse(fleet.registry.policy_path(policy.sha256), media_type=CONTENT_TYPE,
                            headers={"X-Armfarm-Sha256": policy.sha256})

    return app
