"""One Wyoming connection: events in, work in order, events out.

The connection's events are read as they come while its requests run one after another
on a task of their own, so that a streamed text keeps arriving while its first sentences
are spoken, and a client that goes away is noticed at once: its request is cancelled and
the sentences not yet made never reach the model.

::

    describe ──────────────────────────────► info (answered at once)
    synthesize ──────────────► job ─► audio-start, audio-chunk... (per sentence), audio-stop
    synthesize-start ─► job ┐
    synthesize-chunk... ────┴► complete sentences ─► audio as they are made
    synthesize-stop ─────────► the rest ─► audio-stop, synthesize-stopped
    transcribe, audio-start, audio-chunk... (kept), audio-stop ─► job ─► transcript...

A request that fails gets an ``error`` event (``text``: what is wrong and how to fix it,
``code``: the HTTP API's error code) and the connection goes on serving the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from voxserve.errors import EmptyText, InvalidRequest, VoxserveError
from voxserve.logs import RequestInfo, annotate, bind_request
from voxserve.server.wyoming.buffer import SentenceBuffer
from voxserve.server.wyoming.context import Doors
from voxserve.server.wyoming.listen import Recording, transcribe
from voxserve.server.wyoming.speak import AudioOut, params_from, plan_request
from voxserve.text.ssml import is_ssml
from voxserve.types import SynthesisParams

log = logging.getLogger(__name__)

Kind = Literal["synthesize", "synthesize-stream", "transcribe"]


class ClientGone(ConnectionError):
    """The client stopped taking events (closed, reset, or too slow to read)."""


@dataclass
class _Job:
    kind: Kind
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _Speak(_Job):
    text: str = ""
    voice: SynthesizeVoice | None = None
    params: SynthesisParams = field(default_factory=SynthesisParams)
    ssml: bool = False


@dataclass
class _Stream(_Job):
    voice: SynthesizeVoice | None = None
    params: SynthesisParams = field(default_factory=SynthesisParams)
    pieces: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    """Complete sentences to speak, in order; None at synthesize-stop."""
    failed: bool = False
    ssml: bool = False
    """The stream is one SSML document (its only piece, at synthesize-stop)."""


@dataclass
class _Listen(_Job):
    recording: Recording | None = None


class WyomingHandler(AsyncEventHandler):
    """Serves one connection; built by :class:`~voxserve.server.wyoming.service.WyomingServer`."""

    def __init__(
        self, doors: Doors, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(reader, writer)
        self.doors = doors
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._current: _Job | None = None
        self._stream: _Stream | None = None
        self._streamed = False
        self._buffer: SentenceBuffer | None = None
        self._recording: Recording | None = None
        self._recording_failed = False

    # -- reading -----------------------------------------------------------------------

    async def run(self) -> None:
        """Read events until the client goes (or :meth:`stop`), then cancel its work."""
        self._is_running = True
        self.doors.metrics.wyoming_connections.inc()
        try:
            while self._is_running:
                try:
                    event = await async_read_event(self.reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    break
                if event is None or not await self.handle_event(event):
                    break
        finally:
            self.doors.metrics.wyoming_connections.dec()
            await self.disconnect()
            self.writer.close()

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._dispatch(event)
        except VoxserveError as exc:  # a request refused before it was queued
            await self._error(exc)
        except ClientGone:
            return False
        return True

    async def _dispatch(self, event: Event) -> None:
        kind = event.type
        if Describe.is_type(kind):
            self.doors.metrics.wyoming_requests.labels("describe", "ok").inc()
            await self.send(self.doors.info().event())
        elif Ping.is_type(kind):
            await self.send(Pong(text=Ping.from_event(event).text).event())
        elif Synthesize.is_type(kind):
            # A client that streams also sends the whole text in a synthesize, for servers
            # that do not stream: on a connection that streamed, that copy is not spoken
            # (as wyoming-piper does).
            if not self._streamed:
                synthesize = Synthesize.from_event(event)
                params = params_from(event.data)
                self._queue(_Speak("synthesize", text=synthesize.text, voice=synthesize.voice,
                                   params=params, ssml=is_ssml(synthesize.text)))  # fmt: skip
        elif SynthesizeStart.is_type(kind):
            self._start_stream(event)
        elif SynthesizeChunk.is_type(kind):
            self._stream_text(SynthesizeChunk.from_event(event).text)
        elif SynthesizeStop.is_type(kind):
            self._stop_stream()
        elif Transcribe.is_type(kind):
            transcribe = Transcribe.from_event(event)
            self._recording, self._recording_failed = None, False  # a new request
            self._recording = self._new_recording(transcribe.name, transcribe.language)
        elif AudioStart.is_type(kind):
            start = AudioStart.from_event(event)
            if self._recording is None and not self._recording_failed:
                self._recording = self._new_recording(None, None)
            recording = self._recording
            if recording is not None:
                self._guard_recording(
                    lambda: recording.start(start.rate, start.width, start.channels)
                )
        elif AudioChunk.is_type(kind):
            chunk = AudioChunk.from_event(event)
            if self._recording is None and not self._recording_failed:
                self._recording = self._new_recording(None, None)
            if self._recording is not None:
                add = self._recording.add
                self._guard_recording(
                    lambda: add(chunk.audio, chunk.rate, chunk.width, chunk.channels)
                )
        elif AudioStop.is_type(kind):
            if self._recording is not None:
                self._queue(_Listen("transcribe", recording=self._recording))
            self._recording = None
            self._recording_failed = False
        # Anything else (another service's events) is ignored, as Wyoming servers do.

    def _start_stream(self, event: Event) -> None:
        self._stop_stream()  # a new stream ends one left open
        start = SynthesizeStart.from_event(event)
        self._streamed = True
        settings = self.doors.settings
        self._buffer = SentenceBuffer(settings.max_sentence_chars, settings.max_input_chars)
        self._stream = _Stream("synthesize-stream", voice=start.voice)
        try:
            self._stream.params = params_from(event.data)
        except VoxserveError:
            self._stream.failed = True  # its text is dropped until synthesize-stop
            raise
        self._queue(self._stream)

    def _stream_text(self, text: str) -> None:
        if self._stream is None or self._buffer is None:
            raise InvalidRequest(
                "synthesize-chunk without synthesize-start: start a stream first.",
                param="synthesize-chunk",
            )
        try:
            ready = self._buffer.add(text)
        except VoxserveError:  # an SSML document over the size limit: the stream ends
            if not self._stream.failed:
                self._stream.failed = True
                self._stream.pieces.put_nowait(None)
            raise
        if ready and not self._stream.failed:
            self._stream.pieces.put_nowait(ready)

    def _stop_stream(self) -> None:
        if self._stream is None or self._buffer is None:
            return
        rest = self._buffer.finish()
        self._stream.ssml = bool(self._buffer.ssml)
        if not self._stream.failed:
            if rest:
                self._stream.pieces.put_nowait(rest)
            self._stream.pieces.put_nowait(None)
        self._stream = self._buffer = None

    def _new_recording(self, model: str | None, language: str | None) -> Recording:
        """A recording to receive; refused (once: the rest of it is dropped until
        audio-stop) when speech recognition is off."""
        if self.doors.transcriber is None:
            self._recording_failed = True
            raise _asr_off()
        return Recording(self.doors.settings.asr_max_seconds, model=model, language=language)

    def _guard_recording(self, step: Callable[[], None]) -> None:
        """Run a step of the recording; once one fails, the rest of it is dropped."""
        if self._recording_failed:
            return
        try:
            step()
        except VoxserveError:
            self._recording, self._recording_failed = None, True
            raise

    # -- the work ------------------------------------------------------------------------

    def _queue(self, job: _Job) -> None:
        self._jobs.put_nowait(job)
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="wyoming request")

    async def _work(self) -> None:
        while True:
            self._current = await self._jobs.get()
            try:
                await self._serve(self._current)
            except ClientGone:
                return
            finally:
                self._current = None

    @property
    def busy(self) -> bool:
        """A request is being served, waits, or is still arriving (the drain waits)."""
        return (
            self._current is not None
            or not self._jobs.empty()
            or self._stream is not None
            or self._recording is not None
        )

    async def _serve(self, job: _Job) -> None:
        """Run one request with its own request id, log line and outcome."""
        info = RequestInfo(uuid.uuid4().hex)
        token = bind_request(info)
        outcome = "error"
        try:
            if isinstance(job, _Speak):
                await self._speak(job)
            elif isinstance(job, _Stream):
                await self._speak_stream(job)
            elif isinstance(job, _Listen) and job.recording is not None:
                await self._listen(job.recording)
            outcome = "ok"
        except VoxserveError as exc:
            annotate(error=exc.code)
            if isinstance(job, _Stream):
                job.failed = True
            await self._error(exc)
        except asyncio.CancelledError:
            outcome = "cancelled"
            self.doors.metrics.abandoned.labels("disconnected").inc()
            raise
        except ClientGone:
            outcome = "cancelled"
            self.doors.metrics.abandoned.labels("disconnected").inc()
            raise
        except Exception as exc:  # a bug: this request fails, the connection goes on
            log.exception("wyoming %s failed", job.kind)
            await self._error(VoxserveError(f"Internal error: {type(exc).__name__}: {exc}"))
        finally:
            self.doors.metrics.wyoming_requests.labels(job.kind, outcome).inc()
            log.info(
                "wyoming %s %s", job.kind, outcome,
                extra={
                    "request_id": info.request_id, "protocol": "wyoming", "route": job.kind,
                    "outcome": outcome, "peer": self._peer(),
                    "duration_ms": round((time.perf_counter() - job.started) * 1000, 1),
                    **info.fields,
                },
            )  # fmt: skip
            token.var.reset(token)

    async def _speak(self, job: _Speak) -> None:
        plan = plan_request(self.doors.synth, job.text, job.voice, job.params, ssml=job.ssml)
        annotate(voice=plan.voice.id, characters=plan.input_chars)
        out = AudioOut(self.send, "wyoming/synthesize", self.doors.metrics, job.started)
        spoken = await self.doors.speaker.speak(plan, out)
        annotate(audio_seconds=round(spoken.audio_seconds, 3), cache=spoken.cache)
        await out.stop(plan.output_rate)

    async def _speak_stream(self, job: _Stream) -> None:
        """Each piece of a stream is its own plan; between two, the pause that the
        sentences of one plan get, so the audio is that of the whole text at once."""
        out = AudioOut(self.send, "wyoming/synthesize-stream", self.doors.metrics, job.started)
        rate: int | None = None
        characters, seconds = 0, 0.0
        while (text := await job.pieces.get()) is not None:
            try:
                plan = plan_request(self.doors.synth, text, job.voice, job.params, ssml=job.ssml)
            except EmptyText:  # "..." or a lone emoji between sentences: nothing to say
                continue
            if rate is not None:
                await out.silence(plan.params.sentence_silence, plan.output_rate)
                seconds += plan.params.sentence_silence
            rate = plan.output_rate
            spoken = await self.doors.speaker.speak(plan, out)
            characters += plan.input_chars
            seconds += spoken.audio_seconds
            annotate(voice=plan.voice.id, characters=characters, audio_seconds=round(seconds, 3))
        if rate is not None:
            await out.stop(rate)
        await self.send(SynthesizeStopped().event())

    async def _listen(self, recording: Recording) -> None:
        listener = self.doors.transcriber
        if listener is None:
            raise _asr_off()
        await transcribe(recording, listener, self.doors.admission, self.send)

    # -- writing -------------------------------------------------------------------------

    async def send(self, event: Event) -> None:
        """Write ``event``; ClientGone when the client has gone or stopped reading for
        VOXSERVE_SEND_TIMEOUT_SECONDS (then the connection is dropped)."""
        if self.writer.is_closing():
            raise ClientGone("connection closed")
        try:
            await asyncio.wait_for(
                async_write_event(event, self.writer), self.doors.settings.send_timeout_seconds
            )
        except TimeoutError:
            self.doors.metrics.abandoned.labels("stopped_reading").inc()
            self.writer.transport.abort()
            raise ClientGone("the client stopped reading") from None
        except ConnectionError as exc:
            raise ClientGone(str(exc)) from exc

    async def _error(self, exc: VoxserveError) -> None:
        with contextlib.suppress(ClientGone):
            await self.send(Error(text=exc.message, code=exc.code).event())

    def _peer(self) -> str:
        peer = self.writer.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")

    async def disconnect(self) -> None:
        """The client went (or the server stops): cancel what it asked for."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker


def _asr_off() -> VoxserveError:
    return InvalidRequest(
        "Speech recognition is turned off on this server (VOXSERVE_ASR=false).",
        param="transcribe",
    )
