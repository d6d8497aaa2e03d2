"""The HTTP/1.1 connection: request heads are bounded, and refused in the API's error shape.

A request whose target (path and query string) or headers are too large gets 414 URI Too
Long or 431 Request Header Fields Too Large with the usual JSON error body, wherever it
is caught:

- a head that arrived whole is checked by :func:`check_head` (the guard middleware asks
  it before anything else runs);
- a head still incomplete past :data:`MAX_HEAD_BYTES` never reaches the app: h11 gives up
  buffering it, and :class:`H11Protocol` answers instead of uvicorn's plain-text 400.
  The client is usually still sending then (a 1 MB query string), and closing at once
  would reset the connection and lose the answer; so the write side is closed first and
  what the client still sends is read and dropped, for up to :data:`LINGER_SECONDS`.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
from dataclasses import dataclass
from typing import Any

import h11
from starlette.types import Scope
from uvicorn.protocols.http import h11_impl

from voxserve.server.errors import error_body
from voxserve.server.headers import SECURITY_HEADERS

log = logging.getLogger(__name__)

#: Longest request target (path and query string) served. A Coqui or MaryTTS GET carries
#: its text in the query: the longest text (VOXSERVE_MAX_INPUT_CHARS, 4096), percent-encoded
#: four-byte characters, fits.
MAX_TARGET_BYTES = 64 * 1024
#: Most bytes of header fields (names, values and their separators) in one request.
MAX_HEADER_BYTES = 64 * 1024
#: What h11 buffers of an incomplete head before giving up on it: both limits, plus the
#: method, the HTTP version and line ends.
MAX_HEAD_BYTES = MAX_TARGET_BYTES + MAX_HEADER_BYTES + 1024
#: How long a refused client may go on sending before the connection is closed anyway.
LINGER_SECONDS = 5.0


@dataclass(frozen=True)
class HeadRefusal:
    """Why a request head is refused, as an HTTP error."""

    status: int
    """414 or 431 (or 400 for a head that is not HTTP at all)."""
    code: str
    """The error body's ``code``."""
    message: str
    """What is wrong and what to do instead."""

    def body(self) -> bytes:
        return json.dumps(error_body(self.message, "invalid_request_error", self.code)).encode()


TARGET_TOO_LONG = HeadRefusal(
    414,
    "uri_too_long",
    f"The request URL (path and query string) is longer than {MAX_TARGET_BYTES} bytes. "
    "Send long text in the JSON body of a POST request (POST /v1/audio/speech).",
)
HEADERS_TOO_LARGE = HeadRefusal(
    431,
    "headers_too_large",
    f"The request headers are larger than {MAX_HEADER_BYTES} bytes in all.",
)
NOT_HTTP = HeadRefusal(400, "invalid_http", "The request is not valid HTTP/1.1.")


def check_head(scope: Scope) -> HeadRefusal | None:
    """The refusal a request head that arrived whole deserves, or None if it is served."""
    target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    if target > MAX_TARGET_BYTES:
        return TARGET_TOO_LONG
    headers = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    if headers > MAX_HEADER_BYTES:
        return HEADERS_TOO_LARGE
    return None


def _incomplete_head_refusal(buffered: bytes) -> HeadRefusal:
    """Why h11 gave up on the head in ``buffered``: its size (which part), or its syntax."""
    if len(buffered) <= MAX_HEAD_BYTES:
        return NOT_HTTP
    line_end = buffered.find(b"\n")
    # The request line is the method, the target and the version: allow those few bytes.
    return (
        TARGET_TOO_LONG
        if line_end == -1 or line_end > MAX_TARGET_BYTES + 64
        else (HEADERS_TOO_LARGE)
    )


class H11Protocol(h11_impl.H11Protocol):
    """uvicorn's h11 protocol, whose refusals of a malformed or oversized head are JSON
    errors (414, 431, 400) delivered before the connection closes."""

    _linger: asyncio.TimerHandle | None = None
    """Closes a refused connection if the client does not close it first."""

    def data_received(self, data: bytes) -> None:
        if self._linger is not None:
            return  # refused: what the client still sends is dropped
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        refusal = _incomplete_head_refusal(self.conn.trailing_data[0])
        log.info("refused a request head: %d %s", refusal.status, refusal.code)
        body = refusal.body()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *((name.encode(), value.encode()) for name, value in SECURITY_HEADERS),
        ]
        reason = http.HTTPStatus(refusal.status).phrase.encode()
        for event in (
            h11.Response(status_code=refusal.status, headers=headers, reason=reason),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the answer, then FIN; the client's EOF closes it all
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)


#: Options of uvicorn.Config for every API listener (tests' servers included).
UVICORN_OPTIONS: dict[str, Any] = {
    "http": H11Protocol,
    "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
}
