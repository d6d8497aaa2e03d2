"""Request limits as ASGI middleware: body size, concurrency, per-client rate.

They sit in front of the app so a refused request costs almost nothing, and they wrap
the whole response (streamed bodies included), so a slot is released exactly when the
response ends — finished, failed or cancelled by a client hanging up.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxserve.server.errors import error_body

#: Routes that synthesize; only these count against the concurrency and rate limits.
SYNTHESIS_PATHS = frozenset({"/v1/audio/speech", "/api/tts", "/process"})


async def send_error(
    send: Send, status: int, message: str, type_: str, code: str,
    *, param: str | None = None, retry_after: float | None = None,
) -> None:  # fmt: skip
    body = json.dumps(error_body(message, type_, code, param)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so that FastAPI's body parser re-raises it
    (it wraps other exceptions into a 400) and the error handlers answer 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``, by Content-Length or while reading a chunked body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await send_error(
            send, 413, f"The request body is larger than {self.max_bytes} bytes.",
            "invalid_request_error", "request_too_large",
        )  # fmt: skip


class ConcurrencyLimitMiddleware:
    """At most ``limit`` synthesis requests at once; the next gets 503 with Retry-After."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in SYNTHESIS_PATHS:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            message = f"The server is busy ({self.limit} requests in progress); retry shortly."
            await send_error(send, 503, message, "server_error", "overloaded", retry_after=1)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimitMiddleware:
    """A token bucket per client (API key, else address): ``rate`` per second, ``burst`` deep."""

    MAX_CLIENTS = 10_000

    def __init__(self, app: ASGIApp, rate: float, burst: int) -> None:
        self.app = app
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def _client(self, scope: Scope) -> str:
        state = scope.get("state") or {}
        if "client_id" in state:
            return str(state["client_id"])
        client = scope.get("client")
        return str(client[0]) if client else "-"

    def take(self, client: str, now: float) -> float:
        """Spend one token; returns 0 if allowed, else seconds until a token is available."""
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.MAX_CLIENTS:  # bound memory: forget the idlest
                oldest = min(self._buckets, key=lambda k: self._buckets[k].updated)
                del self._buckets[oldest]
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in SYNTHESIS_PATHS or self.rate <= 0:
            await self.app(scope, receive, send)
            return
        wait = self.take(self._client(scope), time.monotonic())
        if wait:
            await send_error(
                send, 429, f"Rate limit of {self.rate:g} requests per second exceeded.",
                "rate_limit_error", "rate_limit_exceeded", retry_after=wait,
            )  # fmt: skip
            return
        await self.app(scope, receive, send)
