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
then a close code (:data:`~voxserve.server.live_protocol.CLOSE_CODES`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from voxserve import errors as e
from voxserve.audio import get_format
from voxserve.logs import annotate
from voxserve.metrics import Metrics
from voxserve.plan import check_params
from voxserve.server.auth import DEFERRED_KEY
from voxserve.server.errors import error_body, refusal_send, send_error
from voxserve.server.limits import LIVE_PATHS
from voxserve.server.live_protocol import (
    CLOSE_CODES,
    Fatal,
    LiveStart,
    from_validation,
    from_voxserve,
    invalid,
    ssml_flag,
)
from voxserve.server.live_speaker import END, Document, Speaker, SpeakerGone, Voicing
from voxserve.server.openai import speech_voice
from voxserve.server.ssml_routes import wants_ssml
from voxserve.settings import Settings
from voxserve.synthesizer import Synthesizer
from voxserve.text.stream import StreamSplitter

log = logging.getLogger(__name__)

LIVE_PATH = "/v1/audio/speech/live"
assert LIVE_PATH in LIVE_PATHS  # the limits middleware rates and gates this path

router = APIRouter(tags=["live"])


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
            fatal = invalid(
                f"The session reached its limit of {seconds:g} seconds; start another to go on.",
                "session_too_long",
            )
            return await self._fail(fatal)
        except Fatal as fatal:
            return await self._fail(fatal)
        except (WebSocketDisconnect, SpeakerGone):
            self.metrics.abandoned.labels("disconnected").inc()
            log.info("live session: client disconnected; cancelling its work")
            return "disconnected"
        except e.VoxserveError as exc:
            return await self._fail(from_voxserve(exc))
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

    async def _fail(self, fatal: Fatal) -> Literal["error", "disconnected"]:
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
            raise invalid(
                f"No start message within {timeout:g} seconds.", "request_timeout", "type"
            ) from None
        try:
            start = LiveStart.model_validate(data)
        except ValidationError as exc:
            raise from_validation(exc) from None
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
            raise Fatal(
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
            raise invalid(
                "Send JSON text messages; binary messages are not taken.",
                "invalid_message",
                close="binary",
            )
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise invalid(
                "A message is not valid JSON.", "invalid_json", close="invalid_json"
            ) from None
        if not isinstance(data, dict):
            raise invalid('A message must be a JSON object with a "type".', "invalid_message")
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
                raise invalid('A text message needs "delta": a string.', "invalid_value", "delta")
            self._count(delta, "delta")
            if ssml_flag(data):  # a whole document, after what came before it
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
            raise invalid(
                f"Unknown message type {kind!r}: send text, flush or end.",
                "invalid_message",
                "type",
            )

    def _count(self, text: str, param: str) -> None:
        limit = self.settings.max_input_chars
        if len(text) > limit:
            raise invalid(
                f"A message's text has {len(text)} characters; the limit is {limit}.",
                "input_too_long",
                param,
                close="too_big",
            )
        self.characters += len(text)
        if self.characters > self.settings.live_max_session_chars:
            raise invalid(
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
