"""Turning a planned request into an HTTP response: whole, streamed bytes, or SSE.

Shared by the OpenAI, Coqui and MaryTTS routes, so they all stream, cache, time and count
the same way. Only complete results are cached: a streamed response is stored once its
last byte was produced, and a cache hit on a streamed request streams from the cache.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from voxserve.audio import StreamEncoder
from voxserve.cache import AnyCache, cache_key
from voxserve.metrics import Metrics
from voxserve.server.observe import annotate
from voxserve.synthesizer import Plan, Synthesizer

log = logging.getLogger(__name__)

Mode = Literal["whole", "stream", "sse"]
CacheResult = Literal["hit", "miss", "bypass"]

#: Size of the pieces a cached result is streamed in.
HIT_CHUNK_BYTES = 32 * 1024


class SpeechResponder:
    """Runs plans through the cache and the synthesizer and records what happened."""

    def __init__(
        self,
        synth: Synthesizer,
        metrics: Metrics,
        cache: AnyCache | None,
        *,
        log_text: bool = False,
    ) -> None:
        self.synth = synth
        self.metrics = metrics
        self.cache = cache
        self.log_text = log_text

    async def respond(
        self, route: str, plan: Plan, *, mode: Mode, bypass: bool = False
    ) -> Response:
        """The response for ``plan``; ``bypass`` skips the cache read (Cache-Control: no-cache)."""
        started = time.perf_counter()
        key = cache_key(plan, streamed=mode != "whole")
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

        if mode == "whole":
            if cached is None:
                audio = await self.synth.asynthesize(plan)
                cached = audio.data
                self._observe_synthesis(plan, started, audio.duration)
                await self._store(key, cached)
                headers["X-Audio-Duration"] = f"{audio.duration:.3f}"
                headers["X-Synthesis-Seconds"] = f"{time.perf_counter() - started:.3f}"
            self._observe_first_audio(route, plan, started)
            self.metrics.request_duration.labels(route, plan.format.name).observe(
                time.perf_counter() - started
            )
            return Response(cached, media_type=plan.format.content_type, headers=headers)

        body = self._replay(cached) if cached is not None else self._synthesize(key, plan, started)
        timed = self._timed(route, plan, started, body)
        headers["Cache-Control"] = "no-store"
        if mode == "sse":
            return StreamingResponse(
                _sse_events(timed, plan), media_type="text/event-stream", headers=headers
            )
        return StreamingResponse(timed, media_type=plan.format.content_type, headers=headers)

    async def _lookup(self, key: str, bypass: bool) -> tuple[bytes | None, CacheResult | None]:
        if self.cache is None:
            return None, None
        if bypass:
            result: CacheResult = "bypass"
            value = None
        else:
            value = await self.cache.get(key)
            result = "hit" if value is not None else "miss"
        self.metrics.cache_requests.labels(self.cache.name, result).inc()
        return value, result

    async def _store(self, key: str, data: bytes) -> None:
        if self.cache is not None:
            await self.cache.set(key, data)

    def _observe_first_audio(self, route: str, plan: Plan, started: float) -> None:
        self.metrics.time_to_first_audio.labels(route, plan.format.name).observe(
            time.perf_counter() - started
        )

    def _observe_synthesis(self, plan: Plan, started: float, audio_seconds: float) -> None:
        annotate(audio_seconds=round(audio_seconds, 3))
        voice = plan.voice.id
        self.metrics.characters.labels(voice).inc(plan.input_chars)
        self.metrics.audio_seconds.labels(voice).inc(audio_seconds)
        if audio_seconds > 0:
            self.metrics.rtf.labels(voice).observe((time.perf_counter() - started) / audio_seconds)

    async def _timed(
        self, route: str, plan: Plan, started: float, body: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        first = True
        async for data in body:
            if first:
                self._observe_first_audio(route, plan, started)
                first = False
            yield data
        self.metrics.request_duration.labels(route, plan.format.name).observe(
            time.perf_counter() - started
        )

    async def _replay(self, data: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(data), HIT_CHUNK_BYTES):
            yield data[start : start + HIT_CHUNK_BYTES]

    async def _synthesize(self, key: str, plan: Plan, started: float) -> AsyncIterator[bytes]:
        """Encoded audio sentence by sentence; stored in the cache if it completes."""
        encoder = StreamEncoder(plan.format, plan.output_rate)
        limit = self.cache.max_entry_bytes if self.cache is not None else 0
        kept: list[bytes] | None = [] if self.cache is not None else None
        size = 0
        produced = 0.0
        try:
            async for chunk in self.synth.astream(plan):
                produced += chunk.duration
                data = await run_in_threadpool(encoder.feed, chunk.samples)
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
        self._observe_synthesis(plan, started, produced)
        if kept is not None:
            await self._store(key, b"".join(kept))


async def _sse_events(body: AsyncIterator[bytes], plan: Plan) -> AsyncIterator[bytes]:
    """OpenAI's ``stream_format=sse``: base64 audio deltas, then a done event."""
    async for data in body:
        event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
        yield f"data: {json.dumps(event)}\n\n".encode()
    chars = plan.input_chars
    usage = {"input_tokens": chars, "output_tokens": 0, "total_tokens": chars}
    yield f"data: {json.dumps({'type': 'speech.audio.done', 'usage': usage})}\n\n".encode()
