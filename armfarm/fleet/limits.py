"""Request limits: the size of a body (413) and the rate of requests per token (429)."""

from __future__ import annotations

import asyncio
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
    """ASGI middleware bounding request bodies before they are read: 413 over the size, 408 when slow.

    Episode uploads and policies (``application/octet-stream``) may take ``max_bytes``; every other body
    (JSON, forms) at most ``max_json_bytes``. A declared ``Content-Length`` over the limit is refused at
    once; a body sent without one is counted as it arrives, and reading stops at the limit. A body that
    stalls for ``read_timeout_s`` between two of its parts is refused with 408.
    """

    def __init__(self, app, max_bytes: int, max_json_bytes: int = 1 << 20, read_timeout_s: float = 30.0):
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_bytes = max_json_bytes
        self.read_timeout_s = read_timeout_s

    def _message(self, size: str, limit: int, binary: bool) -> str:
        what = "--max-request-bytes" if binary else "JSON and form bodies"
        return f"request body of {size} exceeds the server's limit of {limit} bytes ({what})"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        binary = headers.get(b"content-type", b"").split(b";")[0].strip() == b"application/octet-stream"
        limit = self.max_bytes if binary else min(self.max_json_bytes, self.max_bytes)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            body = json.dumps({"detail": self._message(f"{int(declared)} bytes", limit, binary)}).encode()
            await send({"type": "http.response.start", "status": 413, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]})
            return await send({"type": "http.response.body", "body": body})
        received, complete = 0, False

        async def counting_receive():
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect may take as long as the answer does
                return await receive()
            try:
                async with asyncio.timeout(self.read_timeout_s):  # no extra task per read, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"the request body stalled for {self.read_timeout_s:g}s") from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, self._message(f"more than {limit} bytes", limit, binary))
            return message

        return await self.app(scope, counting_receive, send)


def retry_after_header(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
