"""The audio formats voxserve writes: one table, with each format's content type, file
extensions, fixed rate and codec (the encoders are in :mod:`voxserve.audio.encode`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from voxserve.audio.dsp import check_rate
from voxserve.errors import UnknownFormat

if TYPE_CHECKING:
    from av.container.core import Chapter as AvChapter

__all__ = [
    "FORMATS",
    "AudioFormat",
    "carries_chapters",
    "format_from_path",
    "get_format",
    "output_sample_rate",
]


@dataclass(frozen=True)
class AudioFormat:
    """An output format voxserve can write."""

    name: str
    """Name used in requests, e.g. ``"mp3"``."""
    content_type: str
    """MIME type for the HTTP ``Content-Type`` header."""
    extension: str
    """File extension with the dot, e.g. ``".mp3"``."""
    streamable: bool
    """True when bytes can be sent, and played, as they are produced."""
    lossy: bool
    """True for perceptual codecs, whose output only approximates the input."""
    sample_rate: int | None = None
    """Output rate the format always uses, or None when it follows the input rate."""


FORMATS: Final = MappingProxyType(
    {
        fmt.name: fmt
        for fmt in (
            AudioFormat("wav", "audio/wav", ".wav", streamable=True, lossy=False),
            AudioFormat("pcm", "audio/pcm", ".pcm", streamable=True, lossy=False),
            AudioFormat("flac", "audio/flac", ".flac", streamable=True, lossy=False),
            AudioFormat("mp3", "audio/mpeg", ".mp3", streamable=True, lossy=True),
            AudioFormat(
                "opus", "audio/ogg", ".opus", streamable=True, lossy=True, sample_rate=48_000
            ),
            AudioFormat("aac", "audio/aac", ".aac", streamable=True, lossy=True),
        )
    }
)
"""Every supported format, by name."""

_EXTENSIONS: Final = MappingProxyType(
    {
        ".wav": "wav",
        ".pcm": "pcm",
        ".raw": "pcm",
        ".flac": "flac",
        ".mp3": "mp3",
        ".opus": "opus",
        ".ogg": "opus",
        ".aac": "aac",
    }
)


@dataclass(frozen=True)
class Codec:
    """How PyAV writes one of the compressed formats."""

    container: str
    """FFmpeg muxer name."""
    encoder: str
    """FFmpeg encoder name."""
    sample_format: str
    """Sample format the encoder is opened with."""
    bit_rate: int | None
    """Target bits per second; None for lossless."""
    container_options: tuple[tuple[str, str], ...] = ()
    """Muxer options on top of the ones every format gets."""
    chapters: bool = False
    """Whether the container carries chapter markers that FFmpeg writes and reads back
    (MP3: ID3v2 CHAP frames; Ogg: CHAPTERxx comments). FFmpeg's FLAC muxer and ADTS
    write none, and WAV and raw PCM have no place for them."""


CODECS: Final = MappingProxyType(
    {
        # No padding block: it only helps tools that rewrite tags in place, and in a
        # stream it would be 8 KiB of zeros before the first sample.
        "flac": Codec("flac", "flac", "s16", None, (("metadata_header_padding", "0"),)),
        "mp3": Codec("mp3", "libmp3lame", "fltp", 64_000, chapters=True),
        "aac": Codec("adts", "aac", "fltp", 64_000),
        # Ogg's default is a page per second of audio, which holds back the first audio
        # bytes for two seconds. 40 ms pages get them out after ~85 ms of audio for ~5%
        # more bytes in page headers (20 ms: ~45 ms for ~12%).
        "opus": Codec(
            "ogg", "libopus", "flt", 64_000, (("page_duration", "40000"),), chapters=True
        ),
    }
)


Chapter = tuple[str, float, float]
"""A chapter marker: its title, start and end in seconds."""


def av_chapters(chapters: Sequence[Chapter]) -> list[AvChapter]:
    """Chapters as PyAV's ``set_chapters`` takes them, in milliseconds."""
    ms = Fraction(1, 1000)
    return [
        {"id": n, "start": round(start * 1000), "end": round(end * 1000), "time_base": ms,
         "metadata": {"title": title}}
        for n, (title, start, end) in enumerate(chapters, start=1)
    ]  # fmt: skip


def carries_chapters(fmt: AudioFormat) -> bool:
    """Whether files of ``fmt`` can hold chapter markers (:class:`Codec`'s ``chapters``)."""
    codec = CODECS.get(fmt.name)
    return codec is not None and codec.chapters


def get_format(name: str) -> AudioFormat:
    """Return the format called ``name`` (case-insensitive).

    Raises:
        UnknownFormat: no such format; the error lists the supported names.
    """
    fmt = FORMATS.get(name.strip().lower())
    if fmt is None:
        raise UnknownFormat(name, FORMATS.keys(), param="format")
    return fmt


def format_from_path(path: str | os.PathLike[str]) -> AudioFormat:
    """Return the format a file name asks for, from its extension (case-insensitive).

    ``.ogg`` means Opus in Ogg and ``.raw`` means ``pcm``.

    Raises:
        UnknownFormat: the extension is missing (the message says so) or not one
            voxserve writes; the error lists the supported extensions and has
            ``param="output"``.
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if not extension:
        raise UnknownFormat(
            "",
            _EXTENSIONS.keys(),
            param="output",
            message=f"{os.fspath(path)!r} has no extension, and the extension chooses the "
            f"audio format: end the name with one of {', '.join(_EXTENSIONS)} "
            f"(for example {os.fspath(path)}.wav).",
        )
    name = _EXTENSIONS.get(extension)
    if name is None:
        raise UnknownFormat(extension, _EXTENSIONS.keys(), param="output")
    return FORMATS[name]


def resolve(fmt: str | AudioFormat) -> AudioFormat:
    # By name, so that a hand-built AudioFormat cannot smuggle in a format (or a
    # fixed rate) that no encoder here implements.
    return get_format(fmt.name if isinstance(fmt, AudioFormat) else fmt)


def output_sample_rate(fmt: str | AudioFormat, sample_rate: int) -> int:
    """Sample rate of the audio that ``fmt`` writes for input at ``sample_rate``.

    The input rate where the codec takes it, otherwise the format's fixed rate (Opus:
    48 kHz) or the nearest rate the codec takes.
    """
    audio_format = resolve(fmt)
    rate = check_rate(sample_rate)
    if audio_format.sample_rate is not None:
        return audio_format.sample_rate
    codec = CODECS.get(audio_format.name)
    if codec is None:
        return rate
    import av  # here, not at import: the formats without a PyAV codec never need it

    supported: list[int] | None = av.Codec(codec.encoder, "w").audio_rates
    if not supported or rate in supported:
        return rate
    # Ties go to the higher rate, which loses nothing.
    return min(supported, key=lambda candidate: (abs(candidate - rate), -candidate))
