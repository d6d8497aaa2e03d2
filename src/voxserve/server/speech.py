"""Turning a planned request into an HTTP response: whole, streamed bytes, or SSE.

Shared by the OpenAI, Coqui and MaryTTS routes, so they all stream, cache, time and count
the same way. Only complete results are cached: a streamed response is stored once its
last byte was produced, and a cache hit on a streamed request streams from the cache.

A plan that asks for its words' times (``Plan.words``, docs/captions.md) gets them as
``speech.audio.words`` events in SSE, or whole: one JSON object with the audio and its
words, or the speech's captions (srt, vtt).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from typing import IO, Literal, TypeVar

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from voxserve.admission import Admission, Ticket
from voxserve.audio import FileEncoder, StreamEncoder
from voxserve.cache import AnyCache
from voxserve.captions import (
    CONTENT_TYPES,
    mark_time,
    mark_times,
    render,
    words_and_marks_json,
)
from voxserve.errors import InvalidParameter
from voxserve.logs import annotate
from voxserve.metrics import Metrics
from voxserve.plan import Plan
from voxserve.synthesizer import Synthesizer
from voxserve.types import AudioChunk, WordTiming

log = logging.getLogger(__name__)

Mode = Literal["whole", "stream", "sse"]
CacheResult = Literal["hit", "miss", "bypass"]

#: Size of the pieces a cached result is streamed in.
HIT_CHUNK_BYTES = 32 * 1024

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class _Words:
    """A sentence's timed words and marks, sent before its audio (SSE with
    ``timestamps``)."""

    words: tuple[WordTiming, ...]
    marks: tuple[tuple[str, float], ...] = ()
    """SSML marks in it: (name, seconds)."""


def timed(plan: Plan, form: Literal["words", "srt", "vtt"], *, sse: bool) -> Plan:
    """``plan`` asking for its words' times in ``form`` (the ``timestamps`` field).

    Raises:
        InvalidParameter: captions asked of SSE, or of a voice that cannot time words.
    """
    for voice in plan.voices():
        if not voice.engine.startswith("piper") and voice.engine != "fake":
            raise InvalidParameter(
                f"Voice {voice.id!r} ({voice.engine}) cannot time its words; "
                "timestamps need a Piper voice.",
                param="timestamps",
            )
    if sse and form != "words":
        raise InvalidParameter(
            f"timestamps={form!r} is a whole response; with stream_format=sse use 'words'.",
            param="timestamps",
        )
    return dataclasses.replace(plan, words="sse" if sse else "json" if form == "words" else form)


async def cache_lookup(
    cache: AnyCache | None, metrics: Metrics, key: str, *, bypass: bool = False
) -> tuple[bytes | None, CacheResult | None]:
    """The cached audio for ``key`` (None on a miss, a bypass or no cache) and what
    happened, counted in ``voxserve_cache_requests_total``; shared by every door."""
    if cache is None:
        return None, None
    if bypass:
        result: CacheResult = "bypass"
        value = None
    else:
        value = await cache.get(key)
        result = "hit" if value is not None else "miss"
    metrics.cache_requests.labels(cache.name, result).inc()
    return value, result


class SpeechResponder:
    """Runs plans through the cache and the synthesizer and records what happened."""

    def __init__(
        self,
        synth: Synthesizer,
        metrics: Metrics,
        cache: AnyCache | None,
        admission: Admission,
        *,
        log_text: bool = False,
        spool_bytes: int = 4 * 2**20,
    ) -> None:
        self.synth = synth
        self.metrics = metrics
        self.cache = cache
        self.admission = admission
        self.log_text = log_text
        self.spool_bytes = spool_bytes

    async def respond(
        self, request: Request, route: str, plan: Plan, *, mode: Mode, bypass: bool = False
    ) -> Response:
        """The response for ``plan``; ``bypass`` skips the cache read (Cache-Control: no-cache).

        A cache miss is admitted first (voxserve.admission): refused with 503 before any
        status line is sent, or admitted with every one of its sentences. The admission
        ticket is kept in the request's state, where the concurrency middleware gives it
        back when the response ends, however it ends.
        """
        started = time.perf_counter()
        key = plan.cache_key(streamed=mode != "whole")
        cached, result = await self._lookup(key, bypass)
        annotate(
            voice=plan.voice.id,
            format=plan.format.name,
            characters=plan.input_chars,
            cache=result or "off",
            **({"text": " ".join(plan.sentences)} if self.log_text else {}),
        )
        headers = {"X-Voice": plan.voice.id}
        if result is not None:
            headers["X-Cache"] = result
        whole = mode == "whole" or plan.words in ("json", *CONTENT_TYPES)
        ticket = None if cached is not None else self._admit(request, plan, whole=whole)

        if plan.words in ("json", *CONTENT_TYPES):  # one object or captions, whole
            if ticket is None:
                response = Response(cached, media_type=_media(plan), headers=headers)
            else:
                response = await self._with_words(key, plan, ticket, started, headers)
            self.metrics.request_duration.labels(route, plan.format.name).observe(
                time.perf_counter() - started
            )
            return response

        if mode == "whole":
            if ticket is None:
                response = Response(cached, media_type=plan.format.content_type, headers=headers)
            else:
                response = await self._whole(key, plan, ticket, started, headers)
            self._observe_first_audio(route, plan, started)
            self.metrics.request_duration.labels(route, plan.format.name).observe(
                time.perf_counter() - started
            )
            return response

        body: AsyncIterator[bytes | _Words]
        if ticket is None:
            body = self._replay(cached or b"")
        else:
            body = self._synthesize(key, plan, ticket, started)
        observed = self._timed(route, plan, started, body)
        headers["Cache-Control"] = "no-store"
        if mode == "sse":
            return StreamingResponse(
                _sse_events(observed, plan), media_type="text/event-stream", headers=headers
            )
        return StreamingResponse(
            _audio(observed), media_type=plan.format.content_type, headers=headers
        )

    def _admit(self, request: Request, plan: Plan, *, whole: bool) -> Ticket:
        costs, footprint = self.synth.estimate(plan), self.synth.footprint(plan)
        ticket = self.admission.admit_speech(costs, footprint, whole=whole)
        request.state.ticket = ticket
        return ticket

    @staticmethod
    def _done(ticket: Ticket, chunk: AudioChunk) -> None:
        if chunk.complete:
            ticket.done(chunk.index)

    async def _whole(
        self, key: str, plan: Plan, ticket: Ticket, started: float, headers: dict[str, str]
    ) -> Response:
        """Synthesize and encode as the sentences come, into a file that stays in memory
        up to ``spool_bytes``: a long whole response never holds all its audio at once."""
        spool = tempfile.SpooledTemporaryFile(max_size=self.spool_bytes)  # noqa: SIM115
        encoder = FileEncoder(plan.format, plan.output_rate, spool)
        produced = 0.0
        try:
            # Due up to the wait bound later: streams arriving meanwhile speak first, and it
            # is still done about when admission expected.
            defer = self.admission.max_wait
            async for chunk in self.synth.astream(plan, whole=True, defer=defer):
                produced += chunk.duration
                await run_in_threadpool(encoder.feed, chunk.samples)
                self._done(ticket, chunk)
            size = await run_in_threadpool(encoder.finish)
        except BaseException:
            encoder.close()
            spool.close()
            raise
        self._observe_synthesis(plan, started, produced)
        headers["X-Audio-Duration"] = f"{produced:.3f}"
        headers["X-Synthesis-Seconds"] = f"{time.perf_counter() - started:.3f}"
        spool.seek(0)
        if size <= max(self.spool_bytes, self._cacheable_bytes()):
            data = spool.read()
            spool.close()
            await self._store(key, data)
            return Response(data, media_type=plan.format.content_type, headers=headers)
        headers["Content-Length"] = str(size)
        return StreamingResponse(
            _read_file(spool), media_type=plan.format.content_type, headers=headers
        )

    async def _with_words(
        self, key: str, plan: Plan, ticket: Ticket, started: float, headers: dict[str, str]
    ) -> Response:
        """The audio and each word's times as one JSON object, or the speech's captions."""
        encoder = StreamEncoder(plan.format, plan.output_rate)
        audio: list[bytes] = []
        sentences: list[tuple[WordTiming, ...]] = []
        by_index: dict[int, tuple[WordTiming, ...]] = {}
        starts: dict[int, float] = {}
        produced = 0.0
        try:
            async for chunk in self.synth.astream(plan, whole=True, defer=self.admission.max_wait):
                starts.setdefault(chunk.index, produced)
                produced += chunk.duration
                audio.append(await run_in_threadpool(encoder.feed, chunk.samples))
                if chunk.words:
                    sentences.append(chunk.words)
                    by_index[chunk.index] = chunk.words
                self._done(ticket, chunk)
            audio.append(await run_in_threadpool(encoder.finish))
        finally:
            encoder.close()
        self._observe_synthesis(plan, started, produced)
        headers["X-Audio-Duration"] = f"{produced:.3f}"
        count = len(plan.sentences)
        marks = mark_times(
            plan.sentences,
            plan.marks,
            [by_index.get(i, ()) for i in range(count)],
            [starts.get(i, produced) for i in range(count)],
            produced,
        )
        if plan.words == "json":
            words = [w for timed in sentences for w in timed]
            body = json.dumps({
                "audio": base64.b64encode(b"".join(audio)).decode(),
                "content_type": plan.format.content_type,
                "duration": round(produced, 3),
                "words": words_and_marks_json(words, marks),
            }).encode()  # fmt: skip
        else:
            body = render(plan.words, sentences, marks).encode()
        await self._store(key, body)
        return Response(body, media_type=_media(plan), headers=headers)

    def _cacheable_bytes(self) -> int:
        return self.cache.max_entry_bytes if self.cache is not None else 0

    async def _lookup(self, key: str, bypass: bool) -> tuple[bytes | None, CacheResult | None]:
        return await cache_lookup(self.cache, self.metrics, key, bypass=bypass)

    async def _store(self, key: str, data: bytes) -> None:
        if self.cache is not None:
            await self.cache.set(key, data)

    def _observe_first_audio(self, route: str, plan: Plan, started: float) -> None:
        self.metrics.time_to_first_audio.labels(route, plan.format.name).observe(
            time.perf_counter() - started
        )

    def _observe_synthesis(self, plan: Plan, started: float, audio_seconds: float) -> None:
        annotate(audio_seconds=round(audio_seconds, 3))
        elapsed = time.perf_counter() - started
        self.metrics.observe_synthesis(plan.voice.id, plan.input_chars, audio_seconds, elapsed)

    async def _timed(
        self, route: str, plan: Plan, started: float, body: AsyncIterator[T]
    ) -> AsyncIterator[T]:
        first = True
        async for data in body:
            if first and isinstance(data, bytes):
                self._observe_first_audio(route, plan, started)
                first = False
            yield data
        self.metrics.request_duration.labels(route, plan.format.name).observe(
            time.perf_counter() - started
        )

    async def _replay(self, data: bytes) -> AsyncIterator[bytes | _Words]:
        for start in range(0, len(data), HIT_CHUNK_BYTES):
            yield data[start : start + HIT_CHUNK_BYTES]

    async def _synthesize(
        self, key: str, plan: Plan, ticket: Ticket, started: float
    ) -> AsyncIterator[bytes | _Words]:
        """Encoded audio sentence by sentence, each sentence's words first when the plan
        times them; stored in the cache if it completes (audio alone: not with words)."""
        encoder = StreamEncoder(plan.format, plan.output_rate)
        limit = self._cacheable_bytes()
        kept: list[bytes] | None = [] if self.cache is not None and not plan.words else None
        size = 0
        produced = 0.0
        started_at: dict[int, float] = {}
        try:
            async for chunk in self.synth.astream(plan):
                if chunk.index not in started_at:  # a sentence's words come with its first
                    started_at[chunk.index] = produced
                    marks = _sentence_marks(plan, chunk, produced)
                    if chunk.words or marks:
                        yield _Words(chunk.words, marks)
                produced += chunk.duration
                data = await run_in_threadpool(encoder.feed, chunk.samples)
                self._done(ticket, chunk)
                if data:
                    if kept is not None:
                        size += len(data)
                        kept = kept if size <= limit else None  # too big to cache: stop keeping
                        if kept is not None:
                            kept.append(data)
                    yield data
            tail = await run_in_threadpool(encoder.finish)
        finally:
            encoder.close()
        if tail:
            if kept is not None:
                kept.append(tail)
            yield tail
        if plan.words:  # marks after the last word: the audio's end
            ending = [(m.name, produced) for m in plan.marks if m.sentence >= len(plan.sentences)]
            if ending:
                yield _Words((), tuple(ending))
        self._observe_synthesis(plan, started, produced)
        if kept is not None:
            await self._store(key, b"".join(kept))


async def _read_file(file: IO[bytes]) -> AsyncIterator[bytes]:
    """A spooled whole response, in pieces; the file is closed at the end or on cancel."""
    try:
        while data := await run_in_threadpool(file.read, HIT_CHUNK_BYTES):
            yield data
    finally:
        file.close()


def _sentence_marks(plan: Plan, chunk: AudioChunk, start: float) -> tuple[tuple[str, float], ...]:
    """The marks in the sentence of ``chunk`` (its first), timed by its words (``start``:
    where its audio starts); none unless the plan times words."""
    if not plan.words:
        return ()
    sentence = plan.sentences[chunk.index]
    return tuple(
        (m.name, mark_time(sentence, m, chunk.words, start))
        for m in plan.marks
        if m.sentence == chunk.index
    )


def _media(plan: Plan) -> str:
    """The content type of a response that carries words."""
    return "application/json" if plan.words == "json" else CONTENT_TYPES[plan.words]


async def _audio(body: AsyncIterator[bytes | _Words]) -> AsyncIterator[bytes]:
    async for data in body:
        if isinstance(data, bytes):
            yield data


async def _sse_events(body: AsyncIterator[bytes | _Words], plan: Plan) -> AsyncIterator[bytes]:
    """OpenAI's ``stream_format=sse``: base64 audio deltas, then a done event; with
    timestamps, voxserve's ``speech.audio.words`` before each sentence's audio."""
    async for data in body:
        if isinstance(data, _Words):
            words = words_and_marks_json(data.words, data.marks)
            event = {"type": "speech.audio.words", "words": words}
        else:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
        yield f"data: {json.dumps(event)}\n\n".encode()
    chars = plan.input_chars
    usage = {"input_tokens": chars, "output_tokens": 0, "total_tokens": chars}
    yield f"data: {json.dumps({'type': 'speech.audio.done', 'usage': usage})}\n\n".encode()
