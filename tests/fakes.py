"""Engines without a model: :class:`FakeEngine` speaks, :class:`FakeRecognizer` listens.

:class:`FakeEngine` implements the :class:`~voxserve.engines.base.Engine` protocol. Each
utterance becomes a sine whose length is proportional to the text's length and whose
frequency is derived from the text, so a test can tell from a result alone which utterance
it belongs to (:meth:`FakeEngine.render` gives the expected array). Every ``infer`` call is
recorded, so tests can assert what reached the "model" and in which batches.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import zlib
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import numpy as np

from voxserve.asr.models import AsrModel
from voxserve.asr.whisper import Info, Options, Segment, Word
from voxserve.engines.base import Head, Rest
from voxserve.errors import EngineError
from voxserve.types import FloatArray, SynthesisParams, Utterance, Voice

SAMPLES_PER_CHAR = 40
"""Output length per character of the utterance's text."""


class FakeEngine:
    """Speaks any text as a sine; records every batch it is given."""

    def __init__(
        self,
        *,
        voice_id: str = "fake-voice",
        sample_rate: int = 8000,
        fail_on: Collection[str] = (),
        batching: bool = True,
        lanes: int = 1,
        seconds_per_call: float = 0.0,
        samples_per_char: int = SAMPLES_PER_CHAR,
    ) -> None:
        """``fail_on``: texts that make the whole batch containing them raise EngineError.
        ``batching``: what the engine reports (the Synthesizer uses batch size 1 without it).
        ``lanes``: what the engine reports (how many calls may run at once).
        ``seconds_per_call``: how long each ``infer`` call takes (a sleep: the GIL is free,
        as in onnxruntime), so that a server on this engine has work to queue and cancel.
        ``samples_per_char``: output length per character of text."""
        self._seconds_per_call = seconds_per_call
        self._samples_per_char = samples_per_char
        self._voice = Voice(id=voice_id, language="en_US", sample_rate=sample_rate, engine="fake")
        self._rate = sample_rate
        self._fail_on = frozenset(fail_on)
        self._batching = batching
        self._lanes = lanes
        self._lock = threading.Lock()
        self.batches: list[list[str]] = []
        """Texts of every batch ``infer`` received, in call order (failed batches included)."""
        self.exclusive: list[bool] = []
        """The ``exclusive`` flag of every call, in the same order."""
        self.closed = False

    @property
    def voice(self) -> Voice:
        return self._voice

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def batching(self) -> bool:
        return self._batching

    @property
    def lanes(self) -> int:
        return self._lanes

    def prepare(self, text: str, params: SynthesisParams) -> list[Utterance]:
        return [Utterance(text=text, ids=tuple(ord(c) for c in text), params=params)]

    def infer(self, batch: Sequence[Utterance], *, exclusive: bool = False) -> list[FloatArray]:
        texts = [u.text for u in batch]
        with self._lock:
            self.batches.append(texts)
            self.exclusive.append(exclusive)
        if self._seconds_per_call:
            time.sleep(self._seconds_per_call)
        failing = self._fail_on.intersection(texts)
        if failing:
            raise EngineError(f"fake engine told to fail on {sorted(failing)}")
        return [self.render(text) for text in texts]

    def infer_head(
        self, batch: Sequence[Utterance], seconds: float, *, exclusive: bool = False
    ) -> list[Head]:
        """The first ``seconds`` of each rendering; the rest carries the remaining samples."""
        # math.inf: the whole rendering (as Piper's engine takes it).
        samples = round(seconds * self._rate) if math.isfinite(seconds) else sys.maxsize
        heads = []
        for utterance, audio in zip(batch, self.infer(batch, exclusive=exclusive), strict=True):
            rest = Rest(utterance, audio[samples:]) if len(audio) > samples else None
            heads.append(Head(audio[:samples], rest))
        return heads

    def infer_rest(self, batch: Sequence[Rest], *, exclusive: bool = False) -> list[FloatArray]:
        with self._lock:
            self.batches.append([f"rest of {rest.utterance.text}" for rest in batch])
            self.exclusive.append(exclusive)
        return [rest.state for rest in batch]

    def render(self, text: str) -> FloatArray:
        """The audio :meth:`infer` returns for ``text``."""
        frequency = 100 + 3000 * zlib.crc32(text.encode("utf-8")) / 2**32
        t = np.arange(self._samples_per_char * len(text)) / self._rate
        return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)

    def inferred(self) -> list[str]:
        """Every text that reached ``infer``, flattened in call order."""
        with self._lock:
            return [text for batch in self.batches for text in batch]

    def close(self) -> None:
        self.closed = True


class FakeRecognizer:
    """A speech recognizer for the transcription service's tests: no model.

    It "hears" one segment per 30 s window that has sound in it, saying ``window N`` and
    lasting the window's non-silent stretch; an all-zero recording is silence. Each step
    sleeps ``seconds_per_step`` (the GIL is free, as in CTranslate2) and is recorded.
    """

    def __init__(
        self,
        *,
        model_id: str = "fake-asr",
        english_only: bool = True,
        seconds_per_step: float = 0.0,
        fail_at_step: int | None = None,
    ) -> None:
        self.model = AsrModel(model_id, "fake", english_only, lambda: Path("/nonexistent"))
        self.languages: tuple[str, ...] = ("en",) if english_only else ("en", "de", "fr")
        self._seconds_per_step = seconds_per_step
        self._fail_at_step = fail_at_step
        self._lock = threading.Lock()
        self.steps: list[tuple[int, int]] = []
        """(recording number, window) of every step run, in order."""
        self.running = 0
        """Steps running right now (to check that lanes bound them)."""
        self.most_running = 0
        self._recordings = 0

    @property
    def multilingual(self) -> bool:
        return not self.model.english_only

    def start(self, audio: FloatArray, options: Options) -> tuple[Info, Iterator[Segment]]:
        with self._lock:
            self._recordings += 1
            recording = self._recordings
        seconds = audio.size / 16_000
        info = Info(options.language or "en", seconds, seconds)
        return info, self._windows(recording, audio, options)

    def _windows(self, recording: int, audio: FloatArray, options: Options) -> Iterator[Segment]:
        window = 16_000 * 30
        for index, begin in enumerate(range(0, audio.size, window)):
            with self._lock:
                self.running += 1
                self.most_running = max(self.most_running, self.running)
                self.steps.append((recording, index))
            try:
                time.sleep(self._seconds_per_step)
                if self._fail_at_step == index:
                    raise RuntimeError("the fake model failed")
            finally:
                with self._lock:
                    self.running -= 1
            sound = np.flatnonzero(audio[begin : begin + window])
            if sound.size == 0:
                continue
            start = (begin + sound[0]) / 16_000
            end = (begin + sound[-1] + 1) / 16_000
            text = f"window {index}"
            middle = (start + end) / 2
            words = (Word(start, middle, " window", 0.9), Word(middle, end, f" {index}", 0.9))
            yield Segment(
                id=index + 1, seek=begin // 160, start=start, end=end, text=f" {text}",
                tokens=(1, 2), temperature=options.temperature, avg_logprob=-0.1,
                compression_ratio=1.0, no_speech_prob=0.01,
                words=words if options.words else (),
            )  # fmt: skip
