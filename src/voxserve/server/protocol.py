"""The HTTP/1.1 connection: request heads are bounded, and refused in the API's error shape.

A request whose target (path and query string) or headers are too large gets 414 URI Too
Long or 431 Request Header Fields Too Large with the usual JSON error body, wherever it
is caught:

- a head that arrived whole is checked by :func:`check_head` (the guard middleware asks
  it before anything else runs);
- a head still incomplete past :data:`MAX_HEAD_BYTES` never reaches the app: h11 gives up
  buffering it, and :class:`H11Protocol` answers instead of uvicorn's plain-text 400.

Every refusal made while the client is still sending (a 1 MB query string, a body over
the limit) reaches it: closing at once would reset the connection and lose the answer, so
the write side is closed first and what the client still sends is read and dropped, for
up to :data:`LINGER_SECONDS` (:class:`_GracefulTransport`).
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
from collections.abc import Callable
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
    errors (414, 431, 400), and whose every refusal reaches a client still sending."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(_GracefulTransport(transport, self._still_sending))

    def _still_sending(self) -> bool:
        """Whether the client may still be sending this request (its body, or a head that
        was refused): closing now would reset the connection and lose the answer."""
        return self.conn.their_state in (h11.SEND_BODY, h11.ERROR)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # answered and closing: what the client still sends is dropped
        super().data_received(data)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The connection stops being HTTP: the WebSocket protocol gets the socket's own
        # transport, whose close() is a close. (h11 still thinks the client is sending a
        # body, so the graceful one would half-close and linger, and the WebSocket
        # protocol's own close frame after a refused message would fail to write.)
        assert isinstance(self.transport, _GracefulTransport)
        self.transport = self.transport.inner
        super().handle_websocket_upgrade(event)

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
        self.transport.close()


class _GracefulTransport(asyncio.Transport):
    """A connection's transport whose ``close()``, while the client is still sending,
    first sends the answer and a FIN, then reads and drops what still arrives until the
    client closes too (or :data:`LINGER_SECONDS` pass). Closing a socket with unread data
    resets the connection, and the client's TCP stack throws the answer away."""

    def __init__(self, transport: asyncio.Transport, still_sending: Callable[[], bool]) -> None:
        super().__init__()
        self._transport = transport
        self._still_sending = still_sending
        self._linger: asyncio.TimerHandle | None = None

    @property
    def inner(self) -> asyncio.Transport:
        """The socket's own transport."""
        return self._transport

    def close(self) -> None:
        if self._linger is not None or self._transport.is_closing():
            return
        if not (self._still_sending() and self._transport.can_write_eof()):
            self._transport.close()
            return
        self._transport.write_eof()
        self._transport.resume_reading()
        loop = asyncio.get_running_loop()
        self._linger = loop.call_later(LINGER_SECONDS, self._transport.close)

    def is_closing(self) -> bool:
        return self._linger is not None or self._transport.is_closing()

    def abort(self) -> None:
        self._transport.abort()

    def pause_reading(self) -> None:
        if self._linger is None:  # lingering, it reads on whatever the protocol wants
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


#: Largest WebSocket message taken (live speech sends text deltas and small JSON); a
#: larger one closes the connection with 1009.
MAX_WS_MESSAGE_BYTES = 2**20

#: Options of uvicorn.Config for every API listener (tests' servers included).
UVICORN_OPTIONS: dict[str, Any] = {
    "http": H11Protocol,
    "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
    "ws_max_size": MAX_WS_MESSAGE_BYTES,
}
