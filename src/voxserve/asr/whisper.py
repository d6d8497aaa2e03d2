"""The speech recognition engine contract, and Whisper on faster-whisper (CTranslate2).

A :class:`Recognizer` turns 16 kHz mono samples into :class:`Segment` s *lazily*:
:meth:`Recognizer.start` does the work that needs the whole recording (features, voice
activity detection, language detection) and returns an iterator whose every step
decodes the next window of speech (Whisper's 30 s). The caller runs each step on an
inference lane (:class:`voxserve.asr.service.Transcriber`), so a long recording is cut
into steps that interleave with other work, streams its text as it goes, and stops
when nobody wants the rest.

Nothing is downloaded: ``HF_HUB_OFFLINE=1`` is set before ``faster_whisper`` is
imported, and models are loaded from their directory with ``local_files_only``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from voxserve.asr.models import AsrModel

if TYPE_CHECKING:
    from voxserve.types import FloatArray

Task = Literal["transcribe", "translate"]

#: OpenAI's ``temperature: 0``: start greedy, raise it when a window's decoding fails
#: Whisper's own checks (compression ratio, log probability), as OpenAI describes.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Options:
    """How to transcribe one recording."""

    task: Task = "transcribe"
    language: str | None = None
    """ISO-639-1 code; None to detect it (multilingual models)."""
    prompt: str | None = None
    temperature: float = 0.0
    words: bool = False
    """Word timestamps (costs about 10 % more time)."""
    vad: bool = True
    """Skip what voice activity detection calls silence."""
    beam_size: int = 1


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """One piece of recognized speech, with Whisper's own quality figures."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Info:
    language: str
    duration: float
    """Seconds of audio given."""
    speech_duration: float
    """Seconds left after voice activity detection (what is decoded)."""


class Recognizer(Protocol):
    """What the transcription service needs of a speech recognition engine."""

    model: AsrModel
    languages: tuple[str, ...]
    """ISO-639-1 codes it recognizes."""

    @property
    def multilingual(self) -> bool: ...

    def start(self, audio: FloatArray, options: Options) -> tuple[Info, Iterator[Segment]]:
        """Prepare ``audio``; the iterator decodes one window per step. Thread-safe."""
        ...


class WhisperRecognizer:
    """A CTranslate2 Whisper model on faster-whisper, one worker per inference lane."""

    def __init__(
        self, model: AsrModel, *, device: str = "cpu", threads: int = 1, workers: int = 1
    ) -> None:
        """``threads``: cores per decoding; ``workers``: decodings that may run at once
        (one per lane: CTranslate2 keeps a replica per worker)."""
        os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub is imported
        from faster_whisper import WhisperModel

        self.model = model
        self._whisper: Any = WhisperModel(
            str(model.directory()),
            device=device,
            compute_type="int8" if device == "cpu" else "default",
            cpu_threads=threads,
            num_workers=workers,
            local_files_only=True,
        )
        self.languages: tuple[str, ...] = (
            tuple(self._whisper.supported_languages) if self.multilingual else ("en",)
        )

    @property
    def multilingual(self) -> bool:
        return bool(self._whisper.model.is_multilingual)

    def start(self, audio: FloatArray, options: Options) -> tuple[Info, Iterator[Segment]]:
        temperature = options.temperature or FALLBACK_TEMPERATURES
        segments, info = self._whisper.transcribe(
            audio,
            task=options.task,
            language=options.language or (None if self.multilingual else "en"),
            initial_prompt=options.prompt or None,
            temperature=temperature,
            beam_size=options.beam_size,
            best_of=max(1, options.beam_size),
            word_timestamps=options.words,
            vad_filter=options.vad,
            # Each window stands alone: a hallucination cannot carry into the next one,
            # and the steps of one recording depend on nothing but the audio.
            condition_on_previous_text=False,
        )
        result = Info(
            language=str(info.language),
            duration=float(info.duration),
            speech_duration=float(info.duration_after_vad),
        )
        return result, (_segment(s) for s in segments)


def _segment(s: Any) -> Segment:
    return Segment(
        id=int(s.id),
        seek=int(s.seek),
        start=float(s.start),
        end=float(s.end),
        text=str(s.text),
        tokens=tuple(int(t) for t in s.tokens),
        temperature=float(s.temperature or 0.0),
        avg_logprob=float(s.avg_logprob),
        compression_ratio=float(s.compression_ratio),
        no_speech_prob=float(s.no_speech_prob),
        words=tuple(
            Word(float(w.start), float(w.end), str(w.word), float(w.probability))
            for w in s.words or ()
        ),
    )
