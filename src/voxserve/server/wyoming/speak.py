"""Speech for Wyoming clients: a planned request through the cache, admission and the
scheduler, sent as ``audio-chunk`` events sentence by sentence.

The audio is the HTTP route's ``pcm`` (signed 16-bit little-endian mono at the voice's
rate), made by the same encoder, so it shares cache entries with a streamed
``response_format=pcm`` HTTP request for the same text and parameters. A cache miss is
admitted like an HTTP one (:class:`voxserve.admission.Admission`): refused with an
``error`` event (code ``overloaded``) before any audio, or admitted with every sentence.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.tts import SynthesizeVoice

from voxserve.admission import Admission
from voxserve.audio import StreamEncoder
from voxserve.cache import AnyCache
from voxserve.engines.voices import VoiceLibrary
from voxserve.errors import InvalidParameter
from voxserve.logs import annotate
from voxserve.metrics import Metrics
from voxserve.plan import Plan
from voxserve.server.speech import cache_lookup
from voxserve.server.wyoming.info import speaker_id
from voxserve.synthesizer import Synthesizer
from voxserve.types import SynthesisParams, SynthesisRequest, Voice

#: Bytes per sample of the audio sent (signed 16-bit).
SAMPLE_WIDTH = 2
#: Samples per ``audio-chunk`` event at most (as wyoming-piper sends them).
SAMPLES_PER_CHUNK = 1024

Send = Callable[[Event], Awaitable[None]]


class AudioOut:
    """One audio stream to a client: ``audio-start``, ``audio-chunk``s, ``audio-stop``.

    ``audio-start`` goes out with the first audio (its rate is the voice's, known once
    the first request is planned); :meth:`stop` sends one even with no audio before it.
    """

    def __init__(self, send: Send, route: str, metrics: Metrics, started: float) -> None:
        self._send = send
        self._route = route
        self._metrics = metrics
        self.started = started
        """When the request arrived (perf_counter), for time to first audio."""
        self.rate: int | None = None
        self.bytes = 0

    async def begin(self, rate: int) -> None:
        if self.rate is None:
            self.rate = rate
            await self._send(AudioStart(rate=rate, width=SAMPLE_WIDTH, channels=1).event())

    async def write(self, pcm: bytes, rate: int) -> None:
        """Send ``pcm`` (at ``rate``) in chunks of at most SAMPLES_PER_CHUNK samples."""
        if not pcm:
            return
        await self.begin(rate)
        if self.bytes == 0:
            self._metrics.time_to_first_audio.labels(self._route, "pcm").observe(
                time.perf_counter() - self.started
            )
        step = SAMPLES_PER_CHUNK * SAMPLE_WIDTH
        for start in range(0, len(pcm), step):
            piece = pcm[start : start + step]
            await self._send(AudioChunk(rate, SAMPLE_WIDTH, 1, piece).event())
        self.bytes += len(pcm)

    async def silence(self, seconds: float, rate: int) -> None:
        """``seconds`` of silence: the pause between two sentences spoken apart."""
        samples = round(seconds * rate)
        if samples > 0:
            await self.write(np.zeros(samples, dtype="<i2").tobytes(), rate)

    async def stop(self, rate: int) -> None:
        await self.begin(rate)
        await self._send(AudioStop().event())
        self._metrics.request_duration.labels(self._route, "pcm").observe(
            time.perf_counter() - self.started
        )


@dataclass
class Spoken:
    """What :meth:`Speaker.speak` did."""

    audio_seconds: float
    cache: str


class Speaker:
    """Speaks plans to Wyoming clients, sharing the HTTP routes' cache and admission."""

    def __init__(
        self,
        synth: Synthesizer,
        metrics: Metrics,
        cache: AnyCache | None,
        admission: Admission,
    ) -> None:
        self.synth = synth
        self.metrics = metrics
        self.cache = cache
        self.admission = admission

    async def speak(self, plan: Plan, out: AudioOut) -> Spoken:
        """Send the audio of ``plan`` to ``out`` as each sentence is made.

        Raises Overloaded before any audio when admission refuses it. Cancelled (the
        client went away), the sentences not yet made are dropped before inference.
        """
        started = time.perf_counter()
        key = plan.cache_key(streamed=True)
        cached, _ = await cache_lookup(self.cache, self.metrics, key)
        if cached is not None:
            await out.write(cached, plan.output_rate)
            return Spoken(len(cached) / SAMPLE_WIDTH / plan.output_rate, "hit")
        ticket = self.admission.admit_speech(
            self.synth.estimate(plan), self.synth.footprint(plan), whole=False
        )
        encoder = StreamEncoder(plan.format, plan.output_rate)
        limit = self.cache.max_entry_bytes if self.cache is not None else 0
        kept: list[bytes] | None = [] if self.cache is not None else None
        size = 0
        produced = 0.0
        try:
            async for chunk in self.synth.astream(plan):
                produced += chunk.duration
                data = encoder.feed(chunk.samples)  # int16 conversion: no thread needed
                if chunk.complete:
                    ticket.done(chunk.index)
                if kept is not None:
                    size += len(data)
                    kept = kept if size <= limit else None  # too big to cache
                    if kept is not None:
                        kept.append(data)
                await out.write(data, plan.output_rate)
            tail = encoder.finish()
        finally:
            encoder.close()
            ticket.close()
        await out.write(tail, plan.output_rate)
        elapsed = time.perf_counter() - started
        self.metrics.observe_synthesis(plan.voice.id, plan.input_chars, produced, elapsed)
        if kept is not None and self.cache is not None:
            await self.cache.set(key, b"".join([*kept, tail]))
        return Spoken(produced, "miss" if self.cache is not None else "off")


#: Synthesis parameters a Wyoming request may set (voxserve's extension, see
#: :func:`params_from`), with the SynthesisParams field each sets.
PARAMS = ("speed", "volume", "noise_scale", "noise_w", "sentence_silence")


def params_from(data: dict[str, Any]) -> SynthesisParams:
    """The synthesis parameters of a ``synthesize`` or ``synthesize-start`` event.

    Wyoming has no field for them; voxserve reads an optional object under the
    ``voxserve`` key of the event's data, such as ``{"speed": 1.2, "noise_scale": 0}``,
    which other servers ignore. Ranges are checked when the request is planned.
    """
    extra = data.get("voxserve")
    if extra is None:
        return SynthesisParams()
    if not isinstance(extra, dict):
        raise InvalidParameter(
            f"'voxserve' must be an object of {', '.join(PARAMS)}; got {extra!r}.",
            param="voxserve",
        )
    unknown = sorted(set(extra) - set(PARAMS))
    if unknown:
        raise InvalidParameter(
            f"Unknown synthesis parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMS)}.",
            param=f"voxserve.{unknown[0]}",
        )
    for name, value in extra.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidParameter(
                f"voxserve.{name} must be a number; got {value!r}.", param=f"voxserve.{name}"
            )
    return replace(SynthesisParams(), **extra)


def resolve_voice(library: VoiceLibrary, voice: SynthesizeVoice | None) -> Voice:
    """The installed voice a Wyoming ``voice`` asks for: by name; else the default voice
    if it speaks ``language``, else the first that does (Piper first); else the default.

    Raises UnknownVoice naming the name (``param`` voice.name), or InvalidParameter when
    no voice speaks the language.
    """
    if voice is None or not (voice.name or voice.language):
        return library.resolve(None)
    if voice.name:
        return library.resolve(voice.name, param="voice.name")
    wanted = _language(voice.language or "")
    default = library.resolve(None)
    voices = [default, *library.voices()]
    exact = [v for v in voices if _language(v.language) == wanted]
    close = [v for v in voices if _language(v.language).split("_")[0] == wanted.split("_")[0]]
    if exact or close:
        return (exact or close)[0]
    raise InvalidParameter(
        f"No installed voice speaks {voice.language!r}. Send describe for the voices and "
        "their languages.",
        param="voice.language",
    )


def _language(code: str) -> str:
    return code.strip().lower().replace("-", "_")


def plan_request(
    synth: Synthesizer,
    text: str,
    voice: SynthesizeVoice | None,
    params: SynthesisParams,
    *,
    ssml: bool = False,
) -> Plan:
    """A Wyoming request planned as the HTTP route's ``pcm``; errors name Wyoming's fields.
    ``ssml``: the text is an SSML document (Wyoming has no header for what it ignored: the
    warnings go to the request's log line)."""
    chosen = resolve_voice(synth.library, voice)
    speaker = speaker_id(chosen, voice.speaker if voice is not None else None)
    if speaker is not None:
        params = replace(params, speaker=speaker)
    request = SynthesisRequest(text=text, voice=chosen.id, format="pcm", params=params, ssml=ssml)
    plan = synth.plan(request)
    if plan.warnings:
        annotate(ssml_warnings="; ".join(plan.warnings))
    return plan
