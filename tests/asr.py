"""The speech-recognition judge for tests: :mod:`voxserve.asr` (Whisper tiny.en, offline).

Kept as a module of its own so tests read ``from asr import word_error_rate``; the
implementation, its measured figures and the normalizer's quirks are documented in
``src/voxserve/asr.py``.
"""

from voxserve.asr import (
    WHISPER_RATE,
    Transcriber,
    decode,
    normalize,
    to_whisper_rate,
    word_error_rate,
)

__all__ = [
    "WHISPER_RATE",
    "Transcriber",
    "decode",
    "normalize",
    "to_whisper_rate",
    "word_error_rate",
]
