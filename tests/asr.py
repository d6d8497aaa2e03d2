"""The speech-recognition judge for tests: does synthesized audio say the right words?

Whisper tiny.en through voxserve's own recognizer (:mod:`voxserve.asr`), called directly
on the test's thread, and :func:`word_error_rate` (:mod:`voxserve.asr.wer`). Usage (the
``transcriber`` fixture in ``conftest.py`` shares one model per session)::

    def test_says_the_words(transcriber: Transcriber) -> None:
        audio, rate = synthesize("three dollars and fifty cents")
        heard = transcriber.transcribe(audio, rate)
        assert word_error_rate("three dollars and fifty cents", heard) < 0.1

    heard = transcriber.transcribe_file(mp3_bytes)  # any container PyAV can open

Greedy decoding (beam 1): on 96 paired Piper clips it matched beam 5 (WER 1.29 % vs
1.31 %), ran ~10 % faster, and did not hallucinate "You" in white noise as beam 5 did.
Voice activity filtering is off: it changed no transcript of speech. The measured error
rates and the normalizer's quirks are in ``src/voxserve/asr/wer.py``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxserve.asr import (
    WHISPER_RATE,
    Options,
    WhisperRecognizer,
    decode_upload,
    discover,
    to_whisper_rate,
)
from voxserve.asr.models import TINY_EN
from voxserve.asr.wer import normalize, word_error_rate
from voxserve.types import FloatArray, SynthesisParams, SynthesisRequest

if TYPE_CHECKING:
    from voxserve.synthesizer import Synthesizer

__all__ = [
    "WHISPER_RATE",
    "Transcriber",
    "decode",
    "normalize",
    "to_whisper_rate",
    "word_error_rate",
]

_OPTIONS = Options(language="en", vad=False, beam_size=1)


def decode(data: bytes) -> FloatArray:
    """Any container PyAV decodes, as 16 kHz mono float32."""
    return decode_upload(data)


class Transcriber:
    """Whisper tiny.en on the CPU, loaded once; thread-safe."""

    def __init__(self, *, cpu_threads: int = 2) -> None:
        model = discover(TINY_EN, Path(".cache/voxserve/models"))[TINY_EN]
        self._recognizer = WhisperRecognizer(model, threads=cpu_threads)
        self._lock = threading.Lock()

    def transcribe(self, samples: FloatArray, sample_rate: int) -> str:
        """The text heard in mono float samples in [-1, 1] at ``sample_rate``."""
        return self._transcribe16k(to_whisper_rate(samples, sample_rate))

    def hear(self, synth: Synthesizer, text: str, params: SynthesisParams) -> str:
        """The text heard when ``synth`` speaks ``text`` with its default voice, as users
        get it (the text frontend, the stream's chunks joined)."""
        chunks = list(synth.stream(SynthesisRequest(text, params=params)))
        return self.transcribe(np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate)

    def hear_bare(self, synth: Synthesizer, text: str, params: SynthesisParams) -> str:
        """The text heard when ``synth``'s default voice reads ``text`` as written, with
        no text frontend (espeak-ng's own rules only): the baseline."""
        engine = synth.library.engine(synth.library.resolve(None))
        audio = np.concatenate(engine.infer(engine.prepare(text, params)))
        return self.transcribe(audio, engine.sample_rate)

    def transcribe_file(self, data: bytes) -> str:
        """The text heard in an encoded audio file (any container PyAV decodes)."""
        return self._transcribe16k(decode(data))

    def _transcribe16k(self, audio: FloatArray) -> str:
        if audio.size == 0:
            return ""
        with self._lock:
            _info, segments = self._recognizer.start(audio, _OPTIONS)
            return " ".join(s.text.strip() for s in segments).strip()
