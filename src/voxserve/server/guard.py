"""The connection guard: every request's body first, then the app, watched to the end.

One ASGI middleware, outside every limit, so that what a slow, silent or vanished client
costs is bounded before any slot or model time is spent on it:

- **An oversized head is refused first**: a URL or headers past the limits of
  :mod:`voxserve.server.protocol` get 414 or 431.
- **The body is read whole before anything else runs**, within ``body_timeout`` seconds
  (else 408) and ``max_bytes`` (else 413). A client that sends half a body and goes quiet
  therefore holds a connection, never a concurrency slot.
- **A client that hangs up cancels its request**, whatever the response shape: a whole
  response still being synthesized stops at its next sentence, as a stream does.
- **A client that stops reading** (its socket buffers full for ``send_timeout`` seconds)
  is dropped, and its work cancelled the same way.
- **At the end of a graceful drain** (the server cancels what is still running), a
  request that has not answered yet gets a JSON 503, and a stream in progress is ended
  cleanly instead of being cut mid-chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxserve.metrics import Metrics
from voxserve.server.errors import send_error
from voxserve.server.protocol import check_head

log = logging.getLogger(__name__)


class _ClientGone(Exception):
    """The client hung up or stopped reading; nothing more can be sent to it."""


class _BodyTooLarge(Exception):
    """The body grew past the limit while it was read."""


class GuardMiddleware:
    """Reads each body whole and bounded in time, and cancels work nobody will receive."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        body_timeout: float,
        send_timeout: float,
        metrics: Metrics,
        uploads: Mapping[str, tuple[int, float]] | None = None,
    ) -> None:
        """``uploads``: paths that take files, each with its own (max_bytes, body_timeout)."""
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout
        self.send_timeout = send_timeout
        self.uploads = dict(uploads or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if refusal := check_head(scope):
            await send_error(
                send, refusal.status, refusal.message, "invalid_request_error", refusal.code,
                close=True,
            )  # fmt: skip
            return
        max_bytes, timeout = self.uploads.get(scope["path"], (self.max_bytes, self.body_timeout))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._too_large(send, max_bytes, scope["path"] in self.uploads)
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive, max_bytes), timeout)
        except TimeoutError:
            self.metrics.abandoned.labels("body_timeout").inc()
            await send_error(
                send, 408,
                f"The request body did not arrive within {timeout:g} seconds.",
                "invalid_request_error", "request_timeout", param="body", close=True,
            )  # fmt: skip
            return
        except _BodyTooLarge:
            await self._too_large(send, max_bytes, scope["path"] in self.uploads)
            return
        except _ClientGone:
            return
        await _Exchange(self, body, receive, send).run(scope)

    async def _read_body(self, receive: Receive, max_bytes: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise _BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Send, max_bytes: int, upload: bool) -> None:
        what = "The upload" if upload else "The request body"
        await send_error(
            send, 413, f"{what} is larger than {max_bytes} bytes.",
            "invalid_request_error", "request_too_large",
            param="file" if upload else "body", close=True,
        )  # fmt: skip


class _Exchange:
    """One request after its body arrived: the app runs as a task that the client's
    departure, a stalled send or the end of the drain cancels."""

    def __init__(self, guard: GuardMiddleware, body: bytes, receive: Receive, send: Send) -> None:
        self.guard = guard
        self.body: bytes | None = body
        self._receive = receive
        self._send = send
        self.gone = asyncio.Event()
        """Set when the client disconnected (or the response is complete)."""
        self.started = False
        self.complete = False

    async def receive(self) -> Message:
        """The buffered body once, then ``http.disconnect`` when the client goes."""
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone.is_set() and not self.complete:
            raise _ClientGone()
        try:
            await asyncio.wait_for(self._send(message), self.guard.send_timeout)
        except TimeoutError:
            log.info("client stopped reading for %gs; dropping it", self.guard.send_timeout)
            self.guard.metrics.abandoned.labels("stopped_reading").inc()
            self.gone.set()
            raise _ClientGone() from None
        if message["type"] == "http.response.start":
            self.started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True

    async def _watch(self) -> None:
        """Wait for the client to go (uvicorn also answers disconnect once the response is
        complete)."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                return

    async def run(self, scope: Scope) -> None:
        app = asyncio.ensure_future(self.guard.app(scope, self.receive, self.send))
        watcher = asyncio.ensure_future(self._watch())
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            await asyncio.wait({app, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not app.done() and not self.complete:
                log.info("%s %s: client disconnected; cancelling its work",
                         scope["method"], scope["path"])  # fmt: skip
                self.guard.metrics.abandoned.labels("disconnected").inc()
                app.cancel()
            await _settle(app)
        except asyncio.CancelledError:
            # The server is cutting what is left at the end of its drain: answer rather
            # than let the connection fail.
            app.cancel()
            await _settle(app)
            if not self.gone.is_set() and not self.complete:
                self.guard.metrics.abandoned.labels("drain_timeout").inc()
            await self._cut_short()
        finally:
            for task in (watcher, gone):
                task.cancel()
            await asyncio.gather(watcher, gone, return_exceptions=True)

    async def _cut_short(self) -> None:
        if self.gone.is_set() or self.complete:
            return
        with contextlib.suppress(Exception):
            if not self.started:
                await send_error(
                    self._send, 503, "The server is shutting down; retry on another replica.",
                    "server_error", "shutting_down", retry_after=1, close=True,
                )  # fmt: skip
            else:
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})


async def _settle(task: asyncio.Future[None]) -> None:
    """Wait for ``task`` to end; what it raised because its client went is expected."""
    try:
        await task
    except (asyncio.CancelledError, _ClientGone):
        pass
    except BaseExceptionGroup as group:  # anyio task groups (StreamingResponse) wrap it
        rest = group.split((asyncio.CancelledError, _ClientGone))[1]
        if rest is not None:
            raise rest from None
