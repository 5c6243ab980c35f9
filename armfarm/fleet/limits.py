"""Request limits: the size of a body (413) and the rate of requests per token (429)."""

from __future__ import annotations

import json
import math
import threading
import time

from fastapi import HTTPException


class RateLimiter:
    """Token buckets, one per caller: ``rate`` requests per second on average, bursts of ``burst``.

    ``rate`` 0 turns limiting off.
    """

    def __init__(self, rate: float, burst: int):
        if rate < 0 or burst < 1:
            raise ValueError(f"rate must be >= 0 and burst >= 1, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float | None:
        """Take one request from ``key``'s bucket; None if allowed, else seconds until it would be."""
        if self.rate == 0:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413, before they are read.

    A declared ``Content-Length`` over the limit is refused at once; a body sent without one is
    counted as it arrives, and reading stops at the limit.
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: str) -> str:
        return f"request body of {size} exceeds the server's limit of {self.max_bytes} bytes (--max-request-bytes)"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            body = json.dumps({"detail": self._message(f"{int(declared)} bytes")}).encode()
            await send({"type": "http.response.start", "status": 413, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]})
            return await send({"type": "http.response.body", "body": body})
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message(f"more than {self.max_bytes} bytes"))
            return message

        return await self.app(scope, counting_receive, send)


def retry_after_header(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
