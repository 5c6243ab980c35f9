"""Admission: every request is authenticated, rate-limited and bounded before its body is read.

An ASGI middleware in front of every route but the public ones (``/healthz``, ``/openapi.json`` and
the dashboard's page, login and static files, whose data endpoint checks its own session). It

* takes the bearer token and authenticates it (charging the caller's rate limit), so a caller without
  a valid token never gets the server to read, let alone parse, a body;
* charges requests that fail authentication to a bucket per client address, so guessing tokens is
  rate-limited too (429);
* bounds the requests one caller has in flight at once (429), which bounds the memory that bodies in
  flight can take per caller.

The authenticated caller is left in ``scope["state"]["principal"]`` for the routes.
"""

from __future__ import annotations

import json
from collections import defaultdict

from armfarm.fleet.errors import FleetError
from armfarm.fleet.limits import RateLimiter, retry_after_header

PUBLIC = ("/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect")


def _public(path: str, headers: dict[bytes, bytes]) -> bool:
    if path in PUBLIC or path == "/dashboard" or path.startswith("/dashboard/"):
        return True
    # the dashboard's data checks its session cookie itself; without one it needs a token like any route
    return path == "/v1/dashboard" and b"armfarm_session=" in headers.get(b"cookie", b"")


async def _refuse(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Admission:
    """See the module docstring. ``fleet`` provides ``authenticate(token) -> Principal``."""

    def __init__(self, app, fleet, max_in_flight: int, unauthenticated: RateLimiter):
        self.app, self.fleet = app, fleet
        self.max_in_flight = max_in_flight
        self.unauthenticated = unauthenticated
        self.in_flight: dict[str, int] = defaultdict(int)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if _public(scope["path"], headers):
            return await self.app(scope, receive, send)
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise FleetError(401, "missing token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"})
            principal = await self.fleet.authenticate(token.strip())
        except FleetError as e:
            if e.status == 401:
                address = (scope.get("client") or ("?", 0))[0]
                wait = self.unauthenticated.retry_after(f"address {address}")
                if wait is not None:
                    return await _refuse(send, 429, f"too many requests without a valid token from {address}; "
                                         "retry after the Retry-After seconds", retry_after_header(wait))
            return await _refuse(send, e.status, e.message, e.headers)
        key = str(principal)
        if self.in_flight[key] >= self.max_in_flight:
            return await _refuse(send, 429, f"{principal} has {self.in_flight[key]} requests in flight, the most one "
                                 "caller may; wait for their answers", retry_after_header(1))
        self.in_flight[key] += 1
        scope.setdefault("state", {})["principal"] = principal
        try:
            return await self.app(scope, receive, send)
        finally:
            self.in_flight[key] -= 1
            if not self.in_flight[key]:
                del self.in_flight[key]
