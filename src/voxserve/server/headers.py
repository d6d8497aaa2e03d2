"""Security headers on every HTTP response: API, errors, refusals, static files, the page.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware, which runs the app in a task
of its own and breaks the cancellation of a stream whose client hangs up). Added last,
so it is outermost and even the limit middlewares' refusals carry the headers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Sent with every response unless the response sets the header itself.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),  # browsers trust Content-Type, never guess
    ("X-Frame-Options", "DENY"),  # no page may frame the web page (clickjacking)
    ("Referrer-Policy", "no-referrer"),  # links out of the page do not reveal its URL
)

_RAW = tuple((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS)


class SecurityHeadersMiddleware:
    """Adds :data:`SECURITY_HEADERS` to the start of every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            # A refused WebSocket handshake is answered with an HTTP response too.
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((n, v) for n, v in _RAW if n not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
