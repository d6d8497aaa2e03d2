"""A request validated and planned: what the synthesizer runs, and what its audio is
cached under.

:meth:`voxserve.synthesizer.Synthesizer.plan` builds a :class:`Plan` from a
SynthesisRequest: the voice resolved, the parameters checked (:func:`check_params`), the
text normalized and split into sentences within the length limits.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from voxserve.audio import AudioFormat
from voxserve.errors import InvalidParameter, InvalidSsml, UnknownVoice
from voxserve.text.spoken import Mark
from voxserve.types import (
    NOISE_RANGE,
    SAMPLE_RATE_RANGE,
    SILENCE_RANGE,
    SPEED_RANGE,
    VOLUME_RANGE,
    SynthesisParams,
    Voice,
)

#: Bump when the audio for the same plan would change (encoders, DSP, ...): cache keys
#: change with it. 2: whole files are written by FileEncoder (FLAC through FFmpeg).
AUDIO_VERSION = 2


def check_params(params: SynthesisParams) -> None:
    """Raise InvalidParameter naming the first parameter outside its range."""
    checks: list[tuple[str, float | None, tuple[float, float]]] = [
        ("speed", params.speed, SPEED_RANGE),
        ("volume", params.volume, VOLUME_RANGE),
        ("noise_scale", params.noise_scale, NOISE_RANGE),
        ("noise_w", params.noise_w, NOISE_RANGE),
        ("sentence_silence", params.sentence_silence, SILENCE_RANGE),
        ("sample_rate", params.sample_rate, SAMPLE_RATE_RANGE),
    ]
    for name, value, (low, high) in checks:
        if value is None:
            continue
        if (
            not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise InvalidParameter(
                f"{name} must be a number from {low:g} to {high:g}; got {value!r}.", param=name
            )
    if params.speaker is not None and params.speaker < 0:
        raise InvalidParameter("speaker must be 0 or more.", param="speaker")


@dataclass(frozen=True)
class Plan:
    """A validated request, ready to run."""

    voice: Voice
    format: AudioFormat
    params: SynthesisParams
    sentences: tuple[str, ...]
    """Normalized sentences, each at most ``max_sentence_chars`` long."""
    input_chars: int
    """Characters of the text as the client sent it (what usage and metrics count)."""
    sentence_params: tuple[SynthesisParams, ...] = ()
    """Each sentence's own parameters where SSML changed them (prosody, emphasis); empty:
    every sentence has ``params``. Use :meth:`params_at`."""
    pauses: tuple[float, ...] = ()
    """Seconds of silence after each sentence where SSML set them (breaks); empty: the
    sentence silence between sentences. Use :meth:`pause_after`."""
    marks: tuple[Mark, ...] = ()
    """SSML ``<mark>`` names and the sentence and character offset each stands at."""
    warnings: tuple[str, ...] = ()
    """What the SSML asked that was not done (unknown tags...), for X-SSML-Warnings."""
    lexicon: str = ""
    """Digest of the lexicon entries the text was read with ('' when none apply)."""

    def params_at(self, index: int) -> SynthesisParams:
        """The parameters of sentence ``index``."""
        return self.sentence_params[index] if self.sentence_params else self.params

    def pause_after(self, index: int) -> float:
        """Seconds of silence after sentence ``index`` (none after the last, unless a
        break put some there)."""
        if self.pauses:
            return self.pauses[index]
        return 0.0 if index == len(self.sentences) - 1 else self.params.sentence_silence

    words: str = ""
    """Time each word (docs/captions.md), and how the response carries them: ``""`` not
    at all, else a name of its form (``json``, ``srt``, ``vtt``, ``sse``, ``chunks``)."""
    parts: tuple[Plan, ...] = ()
    """An SSML document that switches voices (``<voice name>``): its spans, in order, each
    a plan of one voice whose output rate is this plan's (``voice`` is the first span's;
    ``sentences``, ``pauses`` and ``marks`` are the whole document's). Empty: one voice."""

    def voices(self) -> tuple[Voice, ...]:
        """Every voice the plan speaks with, in order (one unless it has parts)."""
        return tuple(p.voice for p in self.parts) if self.parts else (self.voice,)

    @property
    def output_rate(self) -> int:
        """Sample rate of the chunks (before a codec's own resampling)."""
        return self.params.sample_rate or self.voice.sample_rate

    def cache_key(self, *, streamed: bool) -> str:
        """The key of this request's encoded audio in a cache.

        Two requests share it only if their audio would be identical: it hashes the
        engine, the voice, the model file's digest, the normalized sentences, every
        synthesis parameter, the format, the output rate, whether the response is
        streamed (a streamed WAV's header differs from a whole one), AUDIO_VERSION and,
        where the response carries word timings, their form (and the JSON's marks).
        """
        voice = self.voice
        material = {
            "v": AUDIO_VERSION,
            "engine": voice.engine,
            "voice": voice.id,
            "digest": voice.digest,
            "sentences": self.sentences,
            "params": asdict(self.params),
            "format": self.format.name,
            "rate": self.output_rate,
            "streamed": streamed,
        }
        # Only when set, so that plain requests keep the keys they had before SSML.
        if self.sentence_params:
            material["sentence_params"] = [asdict(p) for p in self.sentence_params]
        if self.pauses:
            material["pauses"] = self.pauses
        if self.lexicon:
            material["lexicon"] = self.lexicon
        if self.words:  # absent otherwise: the keys of plain audio stay as they were
            material["words"] = self.words
        if self.parts:  # each span's voice, model digest, sentences and parameters
            material["parts"] = [p.cache_key(streamed=streamed) for p in self.parts]
        if self.words and self.marks:  # the JSON and WebVTT list the marks' names and times
            material["marks"] = [asdict(m) for m in self.marks]
        blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def with_parts(plan: Plan, voices: Sequence[Voice], digest: Callable[[str], str]) -> Plan:
    """``plan`` (of ``voices[0]``) cut into parts, one per stretch of sentences spoken in
    one voice (``voices[i]``: sentence ``i``'s); ``digest``: a voice id's lexicon digest.

    Every part is resampled to the plan's output rate (the first voice's, unless the
    request set one), so the parts join into one signal.
    """
    rate = plan.output_rate
    parts: list[Plan] = []
    start = 0
    for end in range(1, len(voices) + 1):
        if end < len(voices) and voices[end].id == voices[start].id:
            continue
        span = range(start, end)
        parts.append(
            Plan(
                voice=voices[start],
                format=plan.format,
                params=replace(plan.params, sample_rate=rate),
                sentences=plan.sentences[start:end],
                input_chars=0,
                sentence_params=tuple(replace(plan.params_at(i), sample_rate=rate) for i in span),
                pauses=tuple(plan.pause_after(i) for i in span),
                lexicon=digest(voices[start].id),
            )
        )
        start = end
    return replace(plan, params=replace(plan.params, sample_rate=rate), parts=tuple(parts))


def named_voices(
    resolve: Callable[[str], Voice], names: Sequence[tuple[str, str]]
) -> dict[str, Voice]:
    """The installed voice of each SSML ``<voice name>`` (its name and where it stands);
    raises InvalidSsml (400) naming an unknown one and where."""
    found = {}
    for name, where in names:
        try:
            found[name] = resolve(name)
        except UnknownVoice as exc:
            raise InvalidSsml(f"Invalid SSML at {where}: <voice name>: {exc.message}") from None
    return found
