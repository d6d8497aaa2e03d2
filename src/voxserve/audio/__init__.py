"""Audio output: sample helpers and encoders for every format voxserve serves."""

from __future__ import annotations

from voxserve.audio.dsp import Resampler, apply_gain, resample, silence, to_int16
from voxserve.audio.encode import (
    FORMATS,
    AudioFormat,
    StreamEncoder,
    encode,
    format_from_path,
    get_format,
    output_sample_rate,
)

__all__ = [
    "FORMATS",
    "AudioFormat",
    "Resampler",
    "StreamEncoder",
    "apply_gain",
    "encode",
    "format_from_path",
    "get_format",
    "output_sample_rate",
    "resample",
    "silence",
    "to_int16",
]
