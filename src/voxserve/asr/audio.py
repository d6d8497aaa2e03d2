"""Uploaded audio in, 16 kHz mono float samples out: what Whisper listens to.

Any container and codec PyAV decodes that people send to a speech-to-text API is taken
(wav, mp3, ogg/opus, flac, m4a/aac, webm and a few more); the demuxer that opened the
file must be one of :data:`CONTAINERS`, so a playlist or another format that refers to
further files is refused before anything else is read. Decoding stops as soon as the
audio passes ``max_seconds``: a long upload costs no more than the limit to refuse.

PyAV (with its FFmpeg libraries) is imported on first use, not with this module: the
server imports this module at start, and a cold start should not pay for it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import numpy as np

from voxserve.errors import AudioTooLong, InvalidAudio
from voxserve.types import FloatArray

if TYPE_CHECKING:
    import av

WHISPER_RATE: Final = 16_000
"""Sample rate Whisper expects, in hertz."""

#: Demuxers (PyAV's ``container.format.name``) an upload may be opened with.
CONTAINERS: Final = frozenset({
    "wav", "w64", "aiff", "mp3", "ogg", "flac", "aac", "matroska,webm",
    "mov,mp4,m4a,3gp,3g2,mj2",
})  # fmt: skip

SUPPORTED = "wav, mp3, ogg/opus, flac, m4a/aac, mp4, webm"


def _join(parts: list[FloatArray]) -> FloatArray:
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def _resampled(frames: Iterable[av.AudioFrame], max_seconds: float | None) -> FloatArray:
    """Resample decoded frames to 16 kHz mono float32 and join them, up to ``max_seconds``."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=WHISPER_RATE)
    limit = None if max_seconds is None else int(max_seconds * WHISPER_RATE)
    parts: list[FloatArray] = []
    total = 0
    for frame in itertools.chain(frames, [None]):  # None flushes the resampler
        for out in resampler.resample(frame):
            part = np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1)
            parts.append(part)
            total += part.size
            if limit is not None and total > limit:
                raise AudioTooLong(max_seconds or 0.0)
    return _join(parts)


def to_whisper_rate(samples: FloatArray, sample_rate: int) -> FloatArray:
    """Resample mono float samples at ``sample_rate`` to 16 kHz float32 with PyAV."""
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(
            f"expected float samples in [-1, 1], got {samples.dtype}; "
            "divide int16 PCM by 32768 first"
        )
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples (1-D array), got shape {samples.shape}")
    audio = np.ascontiguousarray(samples, dtype=np.float32)
    if sample_rate == WHISPER_RATE or audio.size == 0:
        return audio
    import av

    frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = sample_rate
    return _resampled([frame], None)


def decode_upload(data: bytes, *, max_seconds: float | None = None) -> FloatArray:
    """Decode an uploaded audio file to 16 kHz mono float32.

    Raises:
        InvalidAudio: empty, not audio, no audio stream, truncated before any audio,
            corrupt, or a container or codec not taken here (``param`` is ``file``).
        AudioTooLong: the audio lasts longer than ``max_seconds``.
    """
    if not data:
        raise InvalidAudio("The uploaded file is empty.")
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InvalidAudio(
            f"The uploaded file is not audio voxserve can read ({_reason(exc)}). "
            f"Supported: {SUPPORTED}."
        ) from None
    with container:
        if container.format.name not in CONTAINERS:
            raise InvalidAudio(
                f"Files of type {container.format.name!r} are not taken. Supported: {SUPPORTED}."
            )
        if not container.streams.audio:
            raise InvalidAudio("The uploaded file has no audio stream.")
        stream = container.streams.audio[0]
        try:
            audio = _resampled(container.decode(stream), max_seconds)
        except AudioTooLong:
            raise
        except (av.error.FFmpegError, ValueError) as exc:
            raise InvalidAudio(
                f"The uploaded audio could not be decoded ({_reason(exc)}); "
                "it may be corrupt or truncated."
            ) from None
    if audio.size == 0:
        raise InvalidAudio("The uploaded file holds no audio samples (truncated or empty).")
    if not np.all(np.isfinite(audio)):
        raise InvalidAudio("The uploaded audio has samples that are not numbers.")
    return audio


def _reason(exc: BaseException) -> str:
    import av

    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror).rstrip(".").lower()
    return type(exc).__name__
