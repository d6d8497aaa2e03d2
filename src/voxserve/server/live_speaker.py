"""The speaking half of a live session: queued text segments to one audio stream.

:class:`Speaker` takes the segments a session's reader cut, in order. Whatever has queued
up while it was busy is spoken as one plan (up to ``max_input_chars``), each segment on
its own line so its cut stays a sentence end, so the scheduler can read ahead within it.
Each plan is admitted by estimated work (:class:`~voxserve.admission.Admission`) and
synthesized by :meth:`Synthesizer.astream <voxserve.synthesizer.Synthesizer.astream>`.

The audio is one stream for the whole session: the sentence silence goes between plans as
the HTTP route puts it between sentences, one resampler and one encoder run from the first
sentence to the last. So a session whose cuts fall where ``split_sentences`` cuts the same
text gives exactly the samples of one HTTP request for that text.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from voxserve import errors as e
from voxserve.admission import Admission
from voxserve.audio import AudioFormat, Resampler, StreamEncoder, output_sample_rate
from voxserve.audio import silence as make_silence
from voxserve.captions import mark_time, words_json
from voxserve.metrics import Metrics
from voxserve.plan import Plan
from voxserve.synthesizer import Synthesizer
from voxserve.types import FloatArray, SynthesisParams, SynthesisRequest, Voice, WordTiming
from voxserve.words import shift


class _End:
    """The marker queued after the last segment: finish the stream."""


@dataclass(frozen=True)
class Document:
    """An SSML document, queued whole (a text message with ``"ssml": true``) and spoken
    as one plan: never joined with the segments around it."""

    text: str


END = _End()


class SpeakerGone(Exception):
    """The client hung up or stopped reading: nothing more can be sent."""


@dataclass(frozen=True)
class Voicing:
    """How a session speaks: what its start message asked for, checked."""

    voice: Voice
    """The installed voice."""
    format: AudioFormat
    """The format of the session's one audio stream."""
    params: SynthesisParams
    """Speed, volume, noise, sentence silence and the output rate."""

    @property
    def output_rate(self) -> int:
        """Rate of the samples given to the encoder."""
        return self.params.sample_rate or self.voice.sample_rate

    def started(self) -> dict[str, Any]:
        """The ``started`` event: what the stream will be."""
        return {
            "type": "started",
            "voice": self.voice.id,
            "response_format": self.format.name,
            "content_type": self.format.content_type,
            "sample_rate": output_sample_rate(self.format, self.output_rate),
        }


class Speaker:
    """Speaks queued segments into the session's stream; see the module docstring."""

    def __init__(
        self,
        ws: WebSocket,
        synth: Synthesizer,
        voicing: Voicing,
        metrics: Metrics,
        *,
        admission: Admission,
        send_timeout: float,
        route: str = "/v1/audio/speech/live",
    ) -> None:
        self.ws = ws
        self.synth = synth
        self.voicing = voicing
        self.metrics = metrics
        self.admission = admission
        self.send_timeout = send_timeout
        self.route = route
        self._items: deque[tuple[str | Document | _End, float]] = deque()
        self._ready = asyncio.Event()
        rate = voicing.voice.sample_rate
        self._rate = rate
        # Plans run at the voice's rate; the session resamples once, so that the stream is
        # continuous across plans as the HTTP route's is across sentences.
        self._params = replace(voicing.params, sample_rate=None)
        pause = voicing.params.sentence_silence
        self._pause = make_silence(pause, rate) if pause > 0 else np.zeros(0, np.float32)
        self._resampler = Resampler(rate, voicing.output_rate)
        self._encoder = StreamEncoder(voicing.format, voicing.output_rate)
        self._position = 0
        """Samples (at the voice's rate) in the stream so far."""
        self.sentences = 0
        """Sentences spoken so far."""

    @property
    def audio_seconds(self) -> float:
        return self._position / self._rate

    def queue(self, item: str | Document | _End, now: float = 0.0) -> None:
        """Queue a segment cut at ``now`` (``time.monotonic()``), a document, or :data:`END`."""
        self._items.append((item, now))
        self._ready.set()

    async def run(self) -> None:
        """Speak every segment until :data:`END`, then end the stream (its last bytes)."""
        while True:
            said, cut_at, end = await self._take()
            if said:
                await self._say(said, cut_at)
            if end:
                break
        tail = self._resampler.flush()
        data = await run_in_threadpool(self._encoder.feed, tail) if len(tail) else b""
        data += await run_in_threadpool(self._encoder.finish)
        if data:
            await self._send(self.ws.send_bytes(data))

    async def send_json(self, event: dict[str, Any]) -> None:
        await self._send(self.ws.send_text(json.dumps(event)))

    def close(self) -> None:
        """Release the encoder (at the end, or when the session is cut short)."""
        self._encoder.close()

    def summary(self) -> dict[str, Any]:
        """For the session's access log line."""
        return {"sentences": self.sentences, "audio_seconds": round(self.audio_seconds, 3)}

    # -- internals ----------------------------------------------------------------------------

    async def _take(self) -> tuple[str | Document, float, bool]:
        """What has queued up (at least one item): its texts joined, or one document; when
        the first was cut; and whether the end came with it."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        limit = self.synth.config.max_input_chars
        texts: list[str] = []
        first = self._items[0][1]
        size = -1
        while self._items:
            item, _ = self._items[0]
            if isinstance(item, _End):
                self._items.popleft()
                return "\n".join(texts), first, True
            if isinstance(item, Document):
                if texts:
                    break
                self._items.popleft()
                return item, first, False
            if texts and size + 1 + len(item) > limit:
                break
            self._items.popleft()
            texts.append(item)
            size += 1 + len(item)
        return "\n".join(texts), first, False

    async def _say(self, said: str | Document, cut_at: float) -> None:
        voicing = self.voicing
        ssml = isinstance(said, Document)
        text = said.text if isinstance(said, Document) else said
        # An SSML <voice> of another rate comes back at the session's.
        params = replace(self._params, sample_rate=self._rate) if ssml else self._params
        request = SynthesisRequest(text, voicing.voice.id, voicing.format.name, params, ssml=ssml)
        try:
            plan = self.synth.plan(request)
        except e.EmptyText:
            return  # punctuation or symbols only: nothing to say
        if all(v.engine.startswith("piper") for v in plan.voices()):  # docs/captions.md
            plan = replace(plan, words="chunks")
        ticket = self.admission.admit_speech(
            self.synth.estimate(plan), self.synth.footprint(plan), whole=False
        )
        try:
            await self._stream(plan, cut_at, ticket.done)
        finally:
            ticket.close()
        voice = voicing.voice.id
        self.metrics.characters.labels(voice).inc(len(text))

    async def _stream(self, plan: Plan, cut_at: float, done: Callable[[int], None]) -> None:
        last = len(plan.sentences) - 1
        first = True
        begun = self._position  # where the current sentence's audio starts
        words: list[WordTiming] = []  # the current sentence's, timed from the plan's start
        async for chunk in self.synth.astream(plan):
            samples = chunk.samples
            if first and self._position > 0 and len(self._pause):
                # The pause after the previous plan's last sentence, as HTTP puts it there.
                await self._send_audio(self._pause)
                begun = self._position
            if first:
                start = self._position / self._rate  # the plan's start in the session
            words.extend(chunk.words)
            await self._send_audio(samples)
            if first:
                first = False
                self.metrics.time_to_first_audio.labels(
                    self.route, self.voicing.format.name
                ).observe(time.monotonic() - cut_at)
            if not chunk.complete:
                continue
            done(chunk.index)
            after = plan.pause_after(chunk.index)  # the sentence silence, or SSML's break
            pause = len(make_silence(after, self._rate)) if after > 0 else 0
            event = {
                "type": "sentence",
                "index": self.sentences,
                "text": chunk.text,
                "offset_seconds": round(begun / self._rate, 4),
                "duration_seconds": round((self._position - pause - begun) / self._rate, 4),
                "words": words_json(shift(words, start)),
            }
            marks = _marks(plan, chunk.index, words, begun / self._rate - start)
            if marks or (chunk.index == last and plan.marks):
                ending = (self._position - pause) / self._rate - start
                marks += [(m.name, ending) for m in plan.marks if m.sentence > last]
                event["marks"] = [{"mark": n, "time": round(t + start, 3)} for n, t in marks]
            await self.send_json(event)
            self.sentences += 1
            begun = self._position
            words = []

    async def _send_audio(self, samples: FloatArray) -> None:
        self._position += len(samples)
        self.metrics.audio_seconds.labels(self.voicing.voice.id).inc(len(samples) / self._rate)
        resampled = self._resampler.process(samples)
        data = await run_in_threadpool(self._encoder.feed, resampled)
        if data:
            await self._send(self.ws.send_bytes(data))

    async def _send(self, sending: Awaitable[None]) -> None:
        """Send within the send timeout; a client that hung up or stopped reading is gone."""
        try:
            await asyncio.wait_for(sending, self.send_timeout)
        except TimeoutError:
            self.metrics.abandoned.labels("stopped_reading").inc()
            raise SpeakerGone("the client stopped reading") from None
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            raise SpeakerGone(str(exc)) from exc


def _marks(
    plan: Plan, index: int, words: list[WordTiming], start: float
) -> list[tuple[str, float]]:
    """The SSML marks in sentence ``index`` of ``plan``: (name, seconds from the plan's
    start), by its ``words`` (timed from the plan's start; ``start``: where its audio
    starts)."""
    sentence = plan.sentences[index]
    return [
        (m.name, mark_time(sentence, m, words, start)) for m in plan.marks if m.sentence == index
    ]
