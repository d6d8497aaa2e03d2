"""Live speech over WebSocket: text in as an LLM writes it, audio out as sentences end.

``WS /v1/audio/speech/live`` (the protocol is in docs/agents.md)::

    client                                        server
    {"type": "start", "voice": ..., ...}    ─►
                                            ◄─    {"type": "started", "sample_rate": ...}
    {"type": "text", "delta": "Hello, wor"} ─►
    {"type": "text", "delta": "ld. How"}    ─►    "Hello, world." is complete:
                                            ◄─    binary audio frames (one stream)
                                            ◄─    {"type": "sentence", "index": 0, ...}
    {"type": "flush"}                       ─►    speak what is buffered now
    {"type": "end"}                         ─►    the rest, then
                                            ◄─    {"type": "done", ...}, close 1000

A session runs two tasks. The reader takes messages, feeds the text to a
:class:`~voxserve.text.stream.StreamSplitter` and queues the segments it cuts (at settled
sentence ends, or after a pause or a hold). The speaker (:mod:`voxserve.server.live_speaker`)
plans what is queued, has it admitted by estimated work like any HTTP request, runs it
through :meth:`Synthesizer.astream <voxserve.synthesizer.Synthesizer.astream>` and sends
one continuous audio stream with the sentence silence between sentences. When the client
goes, the speaker is cancelled: what it has queued in the scheduler is dropped before it
reaches the model, and what the reader queued is never planned.

Refusals before the session starts (API key, rate, overload, too many sessions) are HTTP
answers to the handshake; later errors are an ``error`` event with OpenAI's error object,
then a close code (:data:`CLOSE_CODES`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from pydantic import Field, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from voxserve import errors as e
from voxserve.audio import get_format
from voxserve.logs import annotate
from voxserve.metrics import Metrics
from voxserve.plan import check_params
from voxserve.server.auth import DEFERRED_KEY
from voxserve.server.errors import STATUS, error_body, refusal_send, send_error
from voxserve.server.limits import LIVE_PATHS
from voxserve.server.live_speaker import END, Document, Speaker, SpeakerGone, Voicing
from voxserve.server.openai import speech_voice
from voxserve.server.schemas import SpeechRequest
from voxserve.server.ssml_routes import wants_ssml
from voxserve.settings import Settings
from voxserve.synthesizer import Synthesizer
from voxserve.text.ssml import parse_ssml
from voxserve.text.stream import StreamSplitter

log = logging.getLogger(__name__)

LIVE_PATH = "/v1/audio/speech/live"
assert LIVE_PATH in LIVE_PATHS  # the limits middleware rates and gates this path

#: WebSocket close codes (RFC 6455) by what ended the session.
CLOSE_CODES: Mapping[str, int] = {
    "done": 1000,  # normal closure, after "done"
    "invalid": 1008,  # policy violation: a bad message, key, voice or parameter
    "invalid_json": 1007,  # a text message that is not JSON
    "binary": 1003,  # unsupported data: the client sent a binary message
    "too_big": 1009,  # a delta or the session's text over its limit
    "overloaded": 1013,  # try again later
    "internal": 1011,  # the server failed
}

router = APIRouter(tags=["live"])


class LiveStart(SpeechRequest):
    """The session's first message: the speech request's fields, without ``input``."""

    type: Literal["start"]
    input: str = Field("", description="Text to begin with (more comes in text messages).")
    response_format: str = Field("pcm", description="Audio format of the session's stream.")
    api_key: str | None = Field(
        None, repr=False, description="The API key, for clients that cannot send headers."
    )


class _Fatal(Exception):
    """The session must end with an error event and ``close``."""

    def __init__(self, close: int, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["message"])
        self.close = close
        self.body = body


def _invalid(
    message: str, code: str, param: str | None = None, *, close: str = "invalid"
) -> _Fatal:
    return _Fatal(CLOSE_CODES[close], error_body(message, "invalid_request_error", code, param))


def _from_voxserve(exc: e.VoxserveError) -> _Fatal:
    status, type_ = next((s, t) for cls, s, t in STATUS if isinstance(exc, cls))
    if isinstance(exc, e.Overloaded):
        close = "overloaded"
    elif isinstance(exc, e.TextTooLong):
        close = "too_big"
    elif status >= 500:
        log.error("live session failed: %s", exc.message)
        close = "internal"
    else:
        close = "invalid"
    body = error_body(exc.message, type_, exc.code, exc.param)
    if isinstance(exc, e.Overloaded):
        body["error"]["retry_after"] = exc.retry_after
    return _Fatal(CLOSE_CODES[close], body)


def _from_validation(exc: ValidationError) -> _Fatal:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    if first["type"] == "literal_error" and param == "type":
        return _invalid(
            'The first message must be {"type": "start", ...}.', "invalid_message", "type"
        )
    return _invalid(f"Invalid value for {param!r}: {first['msg']}.", "invalid_value", param)


def _ssml_flag(data: dict[str, Any]) -> bool:
    """A text message's ``ssml``: its delta is one whole SSML document (checked here, so
    that an error names the message's field)."""
    flag = data.get("ssml", False)
    if not isinstance(flag, bool):
        raise _invalid('"ssml" must be true or false.', "invalid_value", "ssml")
    if flag:
        try:
            parse_ssml(data["delta"])
        except e.InvalidSsml as exc:
            raise e.InvalidSsml(exc.message, param="delta") from None
    return flag


def install(app: FastAPI) -> None:
    """Serve live speech on ``app`` (its sessions are counted in ``app.state``)."""
    app.state.live_sessions = 0
    app.state.live_keys = bool(app.state.settings.resolved_api_keys())
    app.include_router(router)


def _cross_origin(ws: WebSocket) -> bool:
    """Whether a browser opened this from a page of another site. A page may open a
    WebSocket to any host (no CORS, unlike a JSON POST), so without API keys a page of
    another site could speak through a server on the user's network."""
    origin = ws.headers.get("origin")
    if origin is None:
        return False  # not a browser
    return urlsplit(origin).netloc.lower() != ws.headers.get("host", "").lower()


@router.websocket(LIVE_PATH)
async def live_speech(ws: WebSocket) -> None:
    """Speak text sent in pieces as it is written (docs/agents.md)."""
    settings: Settings = ws.app.state.settings
    metrics: Metrics = ws.app.state.metrics
    if ws.app.state.live_sessions >= settings.live_max_sessions:
        message = f"{settings.live_max_sessions} live sessions are open; retry shortly."
        await send_error(
            refusal_send(ws.scope, ws.send),
            503,
            message,
            "server_error",
            "overloaded",
            retry_after=1,
        )
        return
    if not ws.app.state.live_keys and _cross_origin(ws):
        message = (
            "A page of another site may not use live speech while API keys are off; "
            "configure VOXSERVE_API_KEYS and send one in the start message."
        )
        await send_error(
            refusal_send(ws.scope, ws.send), 403, message, "invalid_request_error",
            "cross_origin", param="Origin",
        )  # fmt: skip
        return
    ws.app.state.live_sessions += 1
    metrics.live_connections.inc()
    outcome = "error"
    try:
        await ws.accept()
        session = _Session(ws, settings, metrics)
        outcome = await session.run()
    finally:
        ws.app.state.live_sessions -= 1
        metrics.live_connections.dec()
        metrics.live_sessions.labels(outcome).inc()


class _Session:
    """One live session: the start message, then the reader and the speaker."""

    def __init__(self, ws: WebSocket, settings: Settings, metrics: Metrics) -> None:
        self.ws = ws
        self.settings = settings
        self.metrics = metrics
        self.synth: Synthesizer = ws.app.state.synthesizer
        self.characters = 0
        self.ended = False
        self.initial_ssml = False
        """Whether the start message's input is an SSML document (its input_type)."""
        self.splitter = StreamSplitter(
            idle_seconds=settings.live_idle_seconds,
            hold_seconds=settings.live_hold_seconds,
            max_chars=settings.max_sentence_chars,
        )

    async def run(self) -> Literal["ok", "error", "disconnected"]:
        """The whole session; returns its outcome. Ends the connection."""
        speaker: Speaker | None = None
        try:
            async with asyncio.timeout(self.settings.live_max_session_seconds):
                voicing, initial = await self._start()
                speaker = Speaker(
                    self.ws,
                    self.synth,
                    voicing,
                    self.metrics,
                    admission=self.ws.app.state.admission,
                    send_timeout=self.settings.send_timeout_seconds,
                )
                await speaker.send_json(voicing.started())
                if self.initial_ssml:
                    speaker.queue(Document(initial), time.monotonic())
                else:
                    self._queue(speaker, self.splitter.feed(initial, time.monotonic()))
                await self._converse(speaker)
                await speaker.send_json(self._done(speaker))
        except TimeoutError:
            seconds = self.settings.live_max_session_seconds
            fatal = _invalid(
                f"The session reached its limit of {seconds:g} seconds; start another to go on.",
                "session_too_long",
            )
            return await self._fail(fatal)
        except _Fatal as fatal:
            return await self._fail(fatal)
        except (WebSocketDisconnect, SpeakerGone):
            self.metrics.abandoned.labels("disconnected").inc()
            log.info("live session: client disconnected; cancelling its work")
            return "disconnected"
        except e.VoxserveError as exc:
            return await self._fail(_from_voxserve(exc))
        finally:
            if speaker is not None:
                speaker.close()
                annotate(**speaker.summary())
        await self._close(CLOSE_CODES["done"])
        return "ok"

    def _done(self, speaker: Speaker) -> dict[str, Any]:
        chars = self.characters
        return {
            "type": "done",
            "sentences": speaker.sentences,
            "audio_seconds": round(speaker.audio_seconds, 4),
            "usage": {"input_tokens": chars, "output_tokens": 0, "total_tokens": chars},
        }

    async def _fail(self, fatal: _Fatal) -> Literal["error", "disconnected"]:
        annotate(error=fatal.body["error"]["code"], close=fatal.close)
        try:
            await asyncio.wait_for(
                self.ws.send_text(json.dumps({"type": "error", **fatal.body})),
                self.settings.send_timeout_seconds,
            )
        except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
            return "disconnected"
        await self._close(fatal.close)
        return "error"

    async def _close(self, code: int) -> None:
        annotate(close=code)
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await self.ws.close(code)

    # -- the start message --------------------------------------------------------------------

    async def _start(self) -> tuple[Voicing, str]:
        """Read and check the start message: the key (if deferred), voice, format, params."""
        timeout = self.settings.body_timeout_seconds
        try:
            data = await asyncio.wait_for(self._message(), timeout)
        except TimeoutError:
            raise _invalid(
                f"No start message within {timeout:g} seconds.", "request_timeout", "type"
            ) from None
        try:
            start = LiveStart.model_validate(data)
        except ValidationError as exc:
            raise _from_validation(exc) from None
        self._authenticate(start.api_key)
        try:
            fmt = get_format(start.response_format)
        except e.UnknownFormat as exc:
            raise e.UnknownFormat(exc.format, exc.supported, param="response_format") from None
        params = start.params()
        check_params(params)
        voice = self.synth.library.resolve(speech_voice(start, self.synth, self.settings.voice_map))
        self._count(start.input, "input")
        self.initial_ssml = bool(start.input) and wants_ssml(start.input, start.input_type)
        annotate(voice=voice.id, format=fmt.name)
        return Voicing(voice, fmt, params), start.input

    def _authenticate(self, key: str | None) -> None:
        check = self.ws.scope.get("state", {}).get(DEFERRED_KEY)
        if check is None:  # keys are off, or the handshake carried a valid one
            return
        client = check(key) if key else None
        if client is None:
            message = (
                'Missing API key: send it in the start message ("api_key") or as '
                "'Authorization: Bearer <key>' with the handshake."
                if not key
                else "Invalid API key."
            )
            raise _Fatal(
                CLOSE_CODES["invalid"],
                error_body(message, "authentication_error", "invalid_api_key"),
            )
        annotate(client=client)

    # -- messages ------------------------------------------------------------------------------

    async def _message(self) -> dict[str, Any]:
        """The next message, decoded: a JSON object."""
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            raise _invalid(
                "Send JSON text messages; binary messages are not taken.",
                "invalid_message",
                close="binary",
            )
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise _invalid(
                "A message is not valid JSON.", "invalid_json", close="invalid_json"
            ) from None
        if not isinstance(data, dict):
            raise _invalid('A message must be a JSON object with a "type".', "invalid_message")
        return data

    async def _converse(self, speaker: Speaker) -> None:
        """Read messages until the speaker has said everything after ``end``."""
        speaking = asyncio.ensure_future(speaker.run())
        try:
            while not speaking.done():
                reading = asyncio.ensure_future(self._next(speaker))
                await asyncio.wait({reading, speaking}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reading
                else:
                    reading.result()  # raises what ends the session early
            speaking.result()
        finally:
            if not speaking.done():
                speaking.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await speaking

    async def _next(self, speaker: Speaker) -> None:
        """Take one message, or cut what the splitter holds when its deadline comes first."""
        deadline = self.splitter.deadline()
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            data = await asyncio.wait_for(self._message(), timeout)
        except TimeoutError:
            self._queue(speaker, self.splitter.poll(time.monotonic()))
            return
        if self.ended:
            return  # after "end" only a hang-up matters
        kind = data.get("type")
        if kind == "text":
            delta = data.get("delta")
            if not isinstance(delta, str):
                raise _invalid('A text message needs "delta": a string.', "invalid_value", "delta")
            self._count(delta, "delta")
            if _ssml_flag(data):  # a whole document, after what came before it
                self._queue(speaker, self.splitter.flush())
                speaker.queue(Document(delta), time.monotonic())
            else:
                self._queue(speaker, self.splitter.feed(delta, time.monotonic()))
        elif kind == "flush":
            self._queue(speaker, self.splitter.flush())
        elif kind == "end":
            self._queue(speaker, self.splitter.flush())
            speaker.queue(END)
            self.ended = True
        else:
            raise _invalid(
                f"Unknown message type {kind!r}: send text, flush or end.",
                "invalid_message",
                "type",
            )

    def _count(self, text: str, param: str) -> None:
        limit = self.settings.max_input_chars
        if len(text) > limit:
            raise _invalid(
                f"A message's text has {len(text)} characters; the limit is {limit}.",
                "input_too_long",
                param,
                close="too_big",
            )
        self.characters += len(text)
        if self.characters > self.settings.live_max_session_chars:
            raise _invalid(
                f"The session sent more than {self.settings.live_max_session_chars} characters; "
                "start another to go on.",
                "session_too_large",
                param,
                close="too_big",
            )

    @staticmethod
    def _queue(speaker: Speaker, segments: list[str]) -> None:
        now = time.monotonic()
        for segment in segments:
            speaker.queue(segment, now)
