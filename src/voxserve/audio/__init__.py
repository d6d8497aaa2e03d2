"""Audio output: sample helpers and encoders for every format voxserve serves."""

from __future__ import annotations

from voxserve.audio.dsp import Resampler, apply_gain, resample, silence, to_int16
from voxserve.audio.encode import (
    FORMATS,
    AudioFormat,
    FileEncoder,
    StreamEncoder,
    encode,
    format_from_path,
    get_format,
    output_sample_rate,
    seal_wav,
)
from voxserve.audio.formats import carries_chapters

__all__ = [
    "FORMATS",
    "AudioFormat",
    "FileEncoder",
    "Resampler",
    "StreamEncoder",
    "apply_gain",
    "carries_chapters",
    "encode",
    "format_from_path",
    "get_format",
    "output_sample_rate",
    "resample",
    "seal_wav",
    "silence",
    "to_int16",
]
