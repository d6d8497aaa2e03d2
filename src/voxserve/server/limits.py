"""Request limits as ASGI middleware: concurrency and per-client rate.

They sit in front of the app so a refused request costs almost nothing, and they wrap
the whole response (streamed bodies included), so a slot is released exactly when the
response ends — finished, failed or cancelled by a client hanging up. (The body's size
and arrival time are the guard's: server/guard.py. The work a request may add is
admission's: voxserve.admission.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from voxserve.admission import Admission
from voxserve.errors import Overloaded
from voxserve.server.errors import refusal_send, send_error

#: Routes that run inference (synthesis, recognition); only these count against the
#: concurrency and rate limits.
INFERENCE_PATHS = frozenset({
    "/v1/audio/speech", "/api/tts", "/process",
    "/v1/audio/transcriptions", "/v1/audio/translations",
})  # fmt: skip
#: Of those, the routes whose work is background work (voxserve.lanes): transcription.
BACKGROUND_PATHS = frozenset({"/v1/audio/transcriptions", "/v1/audio/translations"})
#: WebSocket routes that run inference (live speech). A session is refused at its
#: handshake while admission would refuse any request, and takes one token of the rate
#: limit; its sessions are counted and its sentences admitted by the route itself.
LIVE_PATHS = frozenset({"/v1/audio/speech/live"})


class ConcurrencyLimitMiddleware:
    """At most ``limit`` inference requests at once; the next gets 503 with Retry-After.

    While admission would refuse any request (the work admitted is over its wait bound),
    a synthesis request is refused here, before its body is parsed or its text planned:
    under a flood of requests the refusals then cost almost nothing. It also gives back
    the request's admission ticket (``scope["state"]["ticket"]``, set by the responder)
    when the response ends, however it ends.
    """

    def __init__(self, app: ASGIApp, limit: int, admission: Admission) -> None:
        self.app = app
        self.limit = limit
        self.admission = admission
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] in LIVE_PATHS:
            await self._live(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] not in INFERENCE_PATHS:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            message = f"The server is busy ({self.limit} requests in progress); retry shortly."
            await send_error(send, 503, message, "server_error", "overloaded", retry_after=1)
            return
        try:
            self.admission.precheck(background=scope["path"] in BACKGROUND_PATHS)
        except Overloaded as exc:
            await send_error(
                send, 503, exc.message, "server_error", exc.code, retry_after=exc.retry_after
            )
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            ticket = scope.get("state", {}).get("ticket")
            if ticket is not None:
                ticket.close()

    async def _live(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self.admission.precheck()
        except Overloaded as exc:
            await send_error(
                refusal_send(scope, send), 503, exc.message, "server_error", exc.code,
                retry_after=exc.retry_after,
            )  # fmt: skip
            return
        await self.app(scope, receive, send)


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
        limited = (scope["type"] == "http" and scope["path"] in INFERENCE_PATHS) or (
            scope["type"] == "websocket" and scope["path"] in LIVE_PATHS
        )
        if not limited or self.rate <= 0:
            await self.app(scope, receive, send)
            return
        wait = self.take(self._client(scope), time.monotonic())
        if wait:
            await send_error(
                refusal_send(scope, send), 429,
                f"Rate limit of {self.rate:g} requests per second exceeded.",
                "rate_limit_error", "rate_limit_exceeded", retry_after=wait,
            )  # fmt: skip
            return
        await self.app(scope, receive, send)
