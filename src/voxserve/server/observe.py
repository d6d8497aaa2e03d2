"""Per-request observation: request ids, the access log line, and request metrics.

One ASGI middleware, outermost, so it sees every response including refusals by the
limit and auth middlewares, and every WebSocket session (logged when it ends, as 101).
The route handler adds what only it knows (voice, characters, audio seconds, cache
result) with :func:`voxserve.logs.annotate`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxserve.logs import RequestInfo, bind_request
from voxserve.metrics import Metrics

log = logging.getLogger("voxserve.access")

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The template of the route that served ``scope``, or would have: a request refused by
    a middleware (401, 413, 429, 503) never reached the router, so match it here."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)
    return str(getattr(route, "path", "other"))


class ObserveMiddleware:
    """Assigns the request id, counts and times the request, and logs one line for it."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        info = RequestInfo(request_id)
        token = bind_request(info)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            # A WebSocket session is 101 once accepted; a refused handshake has the status
            # of its HTTP answer, or 403 if closed without one (uvicorn answers 403).
            nonlocal status
            kind = message["type"]
            if kind == "websocket.close" and status == 500:
                status = 403
            if kind in ("http.response.start", "websocket.http.response.start", "websocket.accept"):
                status = message.get("status", 101)
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            # The route template, never the raw path: label values must stay bounded.
            route = _route_template(scope, self.routes)
            self.metrics.requests.labels(route, str(status)).inc()
            if status >= 400:
                self.metrics.errors.labels(str(status)).inc()
            method = scope.get("method", "GET")  # a WebSocket handshake is a GET
            log.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "path": scope["path"][:256],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    **info.fields,
                },
            )
            token.var.reset(token)
