"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Off when no key is configured. When on, every route needs a key except the probes and
the web page's static shell (which holds no data and asks the user for a key itself).
A WebSocket handshake may come without one (a browser cannot add headers to it): the
route then takes the key from the session's first message (:data:`DEFERRED_KEY`).
Keys are compared in constant time and never logged; a request is identified in logs and
rate limits by a short hash of its key.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from voxserve.logs import annotate
from voxserve.server.errors import refusal_send, send_error

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/downloads/")  # downloads check their own signature
#: Where a WebSocket handshake without a key finds the check for the key its first message
#: must carry (``scope["state"]``; a callable from key to key id, None when invalid).
DEFERRED_KEY = "api_key_check"


def key_id(key: str) -> str:
    """A stable, non-reversible label for a key (for logs and rate limits)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1").strip()
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    api_key = headers.get(b"x-api-key")
    return api_key.decode("latin-1").strip() if api_key else None


class APIKeyMiddleware:
    """Refuse requests without a valid key with 401 in OpenAI's error shape."""

    def __init__(self, app: ASGIApp, keys: frozenset[str]) -> None:
        self.app = app
        self._keys = [k.encode() for k in keys]

    def _valid(self, key: str) -> bool:
        candidate = key.encode()
        # Check every key, without stopping early, so timing says nothing about which matched.
        matched = False
        for known in self._keys:
            matched |= hmac.compare_digest(candidate, known)
        return matched

    def identify(self, key: str) -> str | None:
        """The key's :func:`key_id` if it is valid, else None."""
        return key_id(key) if self._valid(key) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self._keys:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        key = presented_key(dict(scope["headers"]))
        if key is None and scope["type"] == "websocket":
            # A browser's WebSocket cannot send headers: the route must take the key from
            # the session's first message and check it with this.
            scope.setdefault("state", {})[DEFERRED_KEY] = self.identify
            await self.app(scope, receive, send)
            return
        if key is None or not self._valid(key):
            message = (
                "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
                if key is None
                else "Invalid API key."
            )
            await send_error(
                refusal_send(scope, send), 401, message,
                "authentication_error", "invalid_api_key",
                headers=[(b"www-authenticate", b'Bearer realm="voxserve"')],
            )  # fmt: skip
            return
        scope.setdefault("state", {})["client_id"] = key_id(key)
        annotate(client=key_id(key))
        await self.app(scope, receive, send)
