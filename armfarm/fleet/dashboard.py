"""The live dashboard of a fleet server: ``/dashboard`` (a page) over ``/v1/dashboard`` (its JSON).

(No ``from __future__ import annotations`` here: FastAPI resolves the route signatures at runtime.)

The page needs the admin token, but never in a URL: ``/dashboard/login`` takes it in a form and answers
with a random session id in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` over HTTPS), valid
for ``SESSION_TTL_S``; ``/dashboard/logout`` ends it. Sessions live in the server's memory, so a restart
asks for a new login. ``/v1/dashboard`` accepts that cookie or the admin token as a bearer token, and is
described in ``/openapi.json``. The page's script and style are served from the package; nothing loads
from the internet.
"""

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Cookie, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from armfarm.fleet.auth import matches
from armfarm.fleet.errors import FleetError

SESSION_COOKIE = "armfarm_session"
SESSION_TTL_S = 12 * 3600.0
MAX_LOGIN_BYTES = 4096
INGEST_WINDOW_MIN = 60
_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


class DashboardOut(BaseModel):
    generated_at: str
    store: dict[str, Any] = Field(description="Episodes and transitions stored.")
    robots: list[dict[str, Any]] = Field(description="Registered robots with episodes, last upload and policy.")
    ingest: list[dict[str, Any]] = Field(description="Episodes and transitions stored per minute, last hour.")
    policies: list[dict[str, Any]] = Field(description="Published policy versions.")
    farm: dict[str, Any] | None = Field(description="The farm's status (rounds, learner, components), if any.")


def _page(name: str) -> str:
    return resources.files("armfarm.fleet").joinpath("static", name).read_text()


class Sessions:
    """Dashboard sessions: random ids with an expiry, kept in memory."""

    def __init__(self, ttl_s: float = SESSION_TTL_S):
        self.ttl_s = ttl_s
        self._expiry: dict[str, float] = {}

    def new(self) -> str:
        now = time.monotonic()
        self._expiry = {k: v for k, v in self._expiry.items() if v > now}  # forget expired ones
        session = secrets.token_urlsafe(32)
        self._expiry[session] = now + self.ttl_s
        return session

    def valid(self, session: str | None) -> bool:
        return bool(session) and self._expiry.get(session, 0.0) > time.monotonic()

    def end(self, session: str | None) -> None:
        self._expiry.pop(session or "", None)


def fleet_overview(fleet) -> dict:
    """What the dashboard shows of the fleet itself, from the store's index."""
    store, registry = fleet.store, fleet.registry
    since = (datetime.now(UTC) - timedelta(minutes=INGEST_WINDOW_MIN)).isoformat()
    with store.index.transaction() as cur:
        per_robot = {row[0]: row[1:] for row in cur.execute(
            "SELECT collector_id, COUNT(*), SUM(length), MAX(created_at) FROM episodes GROUP BY collector_id")}
        latest_policy = dict(cur.execute(
            "SELECT e.collector_id, e.policy_id FROM episodes e JOIN (SELECT collector_id, MAX(seq) AS seq FROM "
            "episodes GROUP BY collector_id) m ON e.collector_id = m.collector_id AND e.seq = m.seq").fetchall())
        ingest = [{"minute": row[0], "episodes": int(row[1]), "transitions": int(row[2] or 0)} for row in cur.execute(
            "SELECT substr(created_at, 1, 16) AS minute, COUNT(*), SUM(length) FROM episodes WHERE created_at >= ? "
            "GROUP BY minute ORDER BY minute", (since,))]
    robots = []
    for robot in registry.robots():
        count, transitions, last = per_robot.get(robot.robot_id, (0, 0, None))
        robots.append({"robot_id": robot.robot_id, "env_id": robot.env_id, "episodes": int(count),
                       "transitions": int(transitions or 0), "last_upload": last,
                       "last_policy_id": latest_policy.get(robot.robot_id)})
    policies = [{"version": p.version, "sha256": p.sha256, "source": p.source, "published_at": p.published_at}
                for p in registry.policies()]
    return {"store": {"episodes": store.num_episodes, "transitions": store.num_transitions},
            "robots": robots, "ingest": ingest, "policies": policies}


def dashboard_router(fleet, extra_status: Callable[[], dict] | None, errors) -> APIRouter:
    """The dashboard's routes for ``fleet`` (the server's state); ``extra_status()`` adds the farm's view."""
    router = APIRouter()
    sessions = Sessions()

    def login_page(message: str = "", status: int = 200) -> HTMLResponse:
        return HTMLResponse(_page("login.html").replace("{{message}}", message), status)

    def logged_in(session: str | None) -> bool:
        return sessions.valid(session)

    @router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(armfarm_session: Annotated[str | None, Cookie()] = None) -> Response:
        if not logged_in(armfarm_session):
            return login_page("Sign in with the fleet's admin token.", 401)
        return HTMLResponse(_page("dashboard.html"))

    @router.post("/dashboard/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_LOGIN_BYTES:
            raise FleetError(413, f"a login form is at most {MAX_LOGIN_BYTES} bytes")
        token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        if not matches(token.strip(), fleet.admin_hash):
            return login_page("That is not the admin token.", 401)
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(SESSION_COOKIE, sessions.new(), max_age=int(sessions.ttl_s), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
        return response

    @router.post("/dashboard/logout", include_in_schema=False)
    def logout(armfarm_session: Annotated[str | None, Cookie()] = None) -> Response:
        sessions.end(armfarm_session)
        response = RedirectResponse("/dashboard", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/dashboard/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise FleetError(404, f"no dashboard file {name!r}")
        return Response(_page(name), media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})

    @router.get("/v1/dashboard", response_model=DashboardOut, responses=errors, tags=["dashboard"])
    async def dashboard_json(request: Request, armfarm_session: Annotated[str | None, Cookie()] = None) -> dict:
        """Everything the dashboard shows (the page polls it). Needs the dashboard's session cookie or
        the admin token as a bearer token."""
        if not logged_in(armfarm_session):
            principal = request.scope.get("state", {}).get("principal")  # admitted, and charged, already
            if principal is None:  # a stale cookie let the request past Admission: the token decides
                scheme, _, token = request.headers.get("authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    raise FleetError(401, "sign in at /dashboard or send the admin token",
                                     {"WWW-Authenticate": "Bearer"})
                principal = await fleet.authenticate(token.strip())
            if not principal.is_admin:
                raise FleetError(403, f"{principal} may not read the dashboard: that needs the admin token")
        overview = await run_in_threadpool(fleet_overview, fleet)
        farm = await run_in_threadpool(extra_status) if extra_status is not None else None
        return {"generated_at": datetime.now(UTC).isoformat(), **overview, "farm": farm}

    return router
