"""Speech to text on the machine's inference lanes, beside speech synthesis.

::

    upload ─► decode (PyAV, 16 kHz mono) ─► start: features, voice activity, language
           ─► step: one window of speech (Whisper's 30 s) ─► step ─► ... ─► segments

Every piece of that runs on a *background* lane (:class:`voxserve.lanes.Lanes`): one
step at a time per recording, so eight long uploads take turns with each other step by
step, and speech synthesis keeps its share of the lanes whatever they do. A step that is
running when its client leaves finishes (a thread cannot be interrupted), then nothing
more of that recording is done.

Costs for admission (:mod:`voxserve.admission`) come from the pace each model has shown
here: inference seconds per second of audio, learned per request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from voxserve.asr.audio import WHISPER_RATE, decode_upload
from voxserve.asr.models import AsrModel, resolve
from voxserve.asr.whisper import Info, Options, Recognizer, Segment, WhisperRecognizer
from voxserve.errors import EngineError, InvalidParameter, VoxserveError
from voxserve.lanes import Lanes, yield_to_loop
from voxserve.metrics import Metrics
from voxserve.types import FloatArray

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds of audio one step decodes at most (Whisper's window).
WINDOW_SECONDS = 30.0
#: Inference seconds per second of audio before a model has shown its pace (tiny.en on
#: one lane of the 2-core machine: about 0.06; base about 0.11).
INITIAL_PACE = 0.1
#: Weight of the newest request in a model's running pace.
PACE_WEIGHT = 0.3

Loader = Callable[[AsrModel], Recognizer]


@dataclass(frozen=True)
class AsrConfig:
    """What the transcription service is told by the settings (built at the edge)."""

    max_seconds: float = 3600.0
    """Longest recording taken, in seconds."""
    vad: Literal["auto", "on", "off"] = "auto"
    """Voice activity filtering: auto is on for recordings longer than one window."""
    beam_size: int = 1
    device: str = "cpu"
    cache_dir: Path = field(default_factory=lambda: Path(".cache/voxserve/models"))


@dataclass
class Transcription:
    """A finished recognition: what was heard, and of how much audio."""

    model: str
    info: Info
    segments: list[Segment]

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


class Transcriber:
    """Recognizes speech with the installed models. Build once, share, ``close()``."""

    def __init__(
        self,
        models: dict[str, AsrModel],
        lanes: Lanes,
        *,
        config: AsrConfig | None = None,
        metrics: Metrics | None = None,
        loader: Loader | None = None,
    ) -> None:
        """``models``: the installed ones, the default first (:func:`~.models.discover`).
        ``lanes``: the machine's, shared with the synthesizer. ``loader``: builds a
        recognizer for a model (default: Whisper on faster-whisper, one worker per lane)."""
        if not models:
            raise ValueError("Transcriber needs at least one model")
        self.models = models
        self.lanes = lanes
        self.config = config or AsrConfig()
        self.metrics = metrics if metrics is not None else Metrics()
        self._loader = loader or functools.partial(
            _load_whisper, device=self.config.device, workers=lanes.total
        )
        self._recognizers: dict[str, Recognizer] = {}
        self._loading = asyncio.Lock()
        self._pace: dict[str, float] = {}
        self._executor = ThreadPoolExecutor(
            max_workers=lanes.total, thread_name_prefix="voxserve-asr", initializer=yield_to_loop
        )

    @property
    def default_model(self) -> str:
        return next(iter(self.models))

    def model(self, name: str | None) -> AsrModel:
        """The model called ``name`` (None: the default); UnknownModel otherwise."""
        return self.models[self.default_model] if name is None else resolve(self.models, name)

    def loaded(self) -> list[Recognizer]:
        return list(self._recognizers.values())

    async def load(self, model: AsrModel) -> Recognizer:
        """The recognizer of ``model``, loaded on first use (on an inference thread)."""
        if model.id not in self._recognizers:
            async with self._loading:
                if model.id not in self._recognizers:
                    loop = asyncio.get_running_loop()
                    started = time.perf_counter()
                    recognizer = await loop.run_in_executor(self._executor, self._loader, model)
                    log.info(
                        "speech recognition model %s loaded in %.1fs",
                        model.id, time.perf_counter() - started,
                    )  # fmt: skip
                    self._recognizers[model.id] = recognizer
        return self._recognizers[model.id]

    # -- work -----------------------------------------------------------------------

    async def decode(self, data: bytes) -> FloatArray:
        """Decode an upload on a lane (InvalidAudio or AudioTooLong when it cannot be)."""
        return await self._on_lane(
            "decode", functools.partial(decode_upload, data, max_seconds=self.config.max_seconds)
        )

    def options(
        self,
        recognizer: Recognizer,
        audio: FloatArray,
        *,
        task: Literal["transcribe", "translate"] = "transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float = 0.0,
        words: bool = False,
    ) -> Options:
        """Check a request's options against the model; InvalidParameter naming the field."""
        if task == "translate" and not recognizer.multilingual:
            raise InvalidParameter(
                f"Model {recognizer.model.id!r} is English only and cannot translate. "
                f"Use a multilingual model: {_multilingual(self.models) or 'none installed'}.",
                param="model",
            )
        if language is not None:
            language = language.strip().lower()
            if language not in recognizer.languages:
                listed = ", ".join(recognizer.languages[:12])
                more = ", ..." if len(recognizer.languages) > 12 else ""
                raise InvalidParameter(
                    f"Model {recognizer.model.id!r} does not recognize language {language!r} "
                    f"(ISO-639-1). It knows: {listed}{more}.",
                    param="language",
                )
        if not (0.0 <= temperature <= 1.0) or math.isnan(temperature):
            raise InvalidParameter(
                f"temperature must be between 0 and 1, got {temperature}.", param="temperature"
            )
        seconds = audio.size / WHISPER_RATE
        vad = self.config.vad == "on" or (self.config.vad == "auto" and seconds > WINDOW_SECONDS)
        return Options(
            task=task, language=language, prompt=prompt or None, temperature=temperature,
            words=words, vad=vad, beam_size=self.config.beam_size,
        )  # fmt: skip

    def costs(self, model: AsrModel, audio: FloatArray) -> list[float]:
        """Estimated inference seconds per window of ``audio``, for admission."""
        seconds = audio.size / WHISPER_RATE
        pace = self._pace.get(model.id, INITIAL_PACE)
        windows = max(1, math.ceil(seconds / WINDOW_SECONDS))
        return [pace * min(WINDOW_SECONDS, seconds - i * WINDOW_SECONDS) for i in range(windows)]

    async def start(
        self,
        recognizer: Recognizer,
        audio: FloatArray,
        options: Options,
        *,
        on_window: Callable[[int], None] | None = None,
    ) -> tuple[Info, AsyncIterator[Segment]]:
        """What is known of ``audio`` before decoding (language, durations), and its
        segments as each window is decoded.

        ``on_window(i)`` is called once window ``i`` of the audio is behind (admission
        releases its cost). Closing the iterator early stops the work after the current
        step.
        """
        model = recognizer.model.id
        started = time.perf_counter()
        try:
            info, steps = await self._on_lane(
                model, functools.partial(recognizer.start, audio, options)
            )
        except Exception:
            self.metrics.asr_requests.labels(model, options.task, "error").inc()
            raise
        busy = time.perf_counter() - started
        return info, self._segments(model, audio, options, steps, busy=busy, on_window=on_window)

    async def transcribe(
        self, recognizer: Recognizer, audio: FloatArray, options: Options
    ) -> Transcription:
        """The whole recording's segments at once."""
        info, segments = await self.start(recognizer, audio, options)
        return Transcription(recognizer.model.id, info, [s async for s in segments])

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- internals -------------------------------------------------------------------

    async def _segments(
        self,
        model: str,
        audio: FloatArray,
        options: Options,
        steps: Iterator[Segment],
        *,
        busy: float,
        on_window: Callable[[int], None] | None,
    ) -> AsyncIterator[Segment]:
        outcome = "cancelled"
        window = 0
        try:
            while True:
                started = time.perf_counter()
                segment = await self._on_lane(model, functools.partial(next, steps, None))
                busy += time.perf_counter() - started
                if segment is None:
                    break
                while on_window and (window + 1) * WINDOW_SECONDS <= segment.end:
                    on_window(window)
                    window += 1
                yield segment
            outcome = "ok"
        except Exception:
            outcome = "error"
            raise
        finally:
            self.metrics.asr_requests.labels(model, options.task, outcome).inc()
            if outcome == "ok":
                self._learn(model, busy, audio.size / WHISPER_RATE)

    def _learn(self, model: str, busy: float, seconds: float) -> None:
        if seconds <= 0:
            return
        self.metrics.asr_audio_seconds.labels(model).inc(seconds)
        self.metrics.asr_rtf.labels(model).observe(busy / seconds)
        if seconds >= 1.0:  # a blip is all overhead and says little about the pace
            pace = self._pace.get(model, busy / seconds)
            self._pace[model] = pace + PACE_WEIGHT * (busy / seconds - pace)

    async def _on_lane(self, label: str, work: Callable[[], T]) -> T:
        """Run ``work`` on an inference thread while holding a background lane.

        Cancelled while it runs, the lane is given back only when the thread is done,
        so a lane never has two runs on it.
        """
        waited = time.perf_counter()
        await self.lanes.take(background=True)
        self.metrics.asr_queue_wait.labels(label).observe(time.perf_counter() - waited)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        running = loop.run_in_executor(self._executor, work)

        def finished(done: asyncio.Future[T]) -> None:
            self.lanes.give(background=True)
            if not done.cancelled():
                done.exception()  # retrieved here too: its caller may have gone
            self.metrics.asr_inference.labels(label).observe(time.perf_counter() - started)

        running.add_done_callback(finished)
        try:
            return await asyncio.shield(running)
        except VoxserveError:
            raise
        except Exception as exc:  # a bug or a model failure: one request fails, not all
            raise EngineError(f"Speech recognition failed: {type(exc).__name__}: {exc}") from exc


def _load_whisper(model: AsrModel, *, device: str, workers: int) -> Recognizer:
    return WhisperRecognizer(model, device=device, threads=1, workers=workers)


def _multilingual(models: dict[str, AsrModel]) -> str:
    return ", ".join(m.id for m in models.values() if not m.english_only)
