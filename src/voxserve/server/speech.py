"""Turning a planned request into an HTTP response: whole, streamed bytes, or SSE.

Shared by the OpenAI, Coqui and MaryTTS routes, so they all stream, time and count the
same way.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator

from fastapi import Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from voxserve.audio import StreamEncoder
from voxserve.metrics import Metrics
from voxserve.synthesizer import Plan, Synthesizer

log = logging.getLogger(__name__)


class SpeechResponder:
    """Runs plans through the synthesizer and records what happened."""

    def __init__(self, synth: Synthesizer, metrics: Metrics) -> None:
        self.synth = synth
        self.metrics = metrics

    def _observe(self, route: str, plan: Plan, started: float, audio_seconds: float) -> None:
        elapsed = time.perf_counter() - started
        voice = plan.voice.id
        self.metrics.request_duration.labels(route, plan.format.name).observe(elapsed)
        self.metrics.characters.labels(voice).inc(sum(len(s) for s in plan.sentences))
        self.metrics.audio_seconds.labels(voice).inc(audio_seconds)
        if audio_seconds > 0:
            self.metrics.rtf.labels(voice).observe(elapsed / audio_seconds)

    async def whole(self, route: str, plan: Plan) -> Response:
        """The complete file, with Content-Length and real header sizes."""
        started = time.perf_counter()
        audio = await self.synth.asynthesize(plan)
        self._observe(route, plan, started, audio.duration)
        self.metrics.time_to_first_audio.labels(route, plan.format.name).observe(
            time.perf_counter() - started
        )
        return Response(
            audio.data,
            media_type=audio.content_type,
            headers={
                "X-Audio-Duration": f"{audio.duration:.3f}",
                "X-Voice": plan.voice.id,
                "X-Synthesis-Seconds": f"{time.perf_counter() - started:.3f}",
            },
        )

    async def _encoded(self, route: str, plan: Plan) -> AsyncIterator[bytes]:
        started = time.perf_counter()
        encoder = StreamEncoder(plan.format, plan.output_rate)
        produced = 0.0
        first = True
        async for chunk in self.synth.astream(plan):
            produced += chunk.duration
            data = await run_in_threadpool(encoder.feed, chunk.samples)
            if data:
                if first:
                    self.metrics.time_to_first_audio.labels(route, plan.format.name).observe(
                        time.perf_counter() - started
                    )
                    first = False
                yield data
        tail = await run_in_threadpool(encoder.finish)
        if tail:
            yield tail
        self._observe(route, plan, started, produced)

    def stream(self, route: str, plan: Plan) -> StreamingResponse:
        """Audio bytes sentence by sentence (chunked transfer)."""
        return StreamingResponse(
            self._encoded(route, plan),
            media_type=plan.format.content_type,
            headers={"X-Voice": plan.voice.id, "Cache-Control": "no-store"},
        )

    def sse(self, route: str, plan: Plan) -> StreamingResponse:
        """OpenAI's ``stream_format=sse``: base64 audio deltas, then a done event."""

        async def events() -> AsyncIterator[bytes]:
            async for data in self._encoded(route, plan):
                event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
                yield f"data: {json.dumps(event)}\n\n".encode()
            chars = sum(len(s) for s in plan.sentences)
            done = {
                "type": "speech.audio.done",
                "usage": {"input_tokens": chars, "output_tokens": 0, "total_tokens": chars},
            }
            yield f"data: {json.dumps(done)}\n\n".encode()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"X-Voice": plan.voice.id, "Cache-Control": "no-store"},
        )
