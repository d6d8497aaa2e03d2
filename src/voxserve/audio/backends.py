"""The encoders behind :mod:`voxserve.audio.encode`: raw PCM (with a streaming WAV header)
in Python, and FLAC, MP3, AAC and Opus through PyAV (FFmpeg), imported on first use.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from fractions import Fraction
from typing import IO, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from voxserve.audio.dsp import Resampler, to_int16
from voxserve.audio.formats import (
    CODECS,
    AudioFormat,
    Chapter,
    Codec,
    av_chapters,
    output_sample_rate,
)

WAV_UNKNOWN_SIZE: Final = 0xFFFFFFFF


WAV_HEADER_BYTES: Final = 44


class Backend(Protocol):
    def feed(self, samples: NDArray[np.float32]) -> bytes: ...

    def finish(self) -> bytes: ...

    def close(self) -> None: ...


class PcmBackend:
    """Raw signed 16-bit little-endian samples, optionally after a WAV header."""

    def __init__(self, header: bytes = b"") -> None:
        self._pending = header

    def feed(self, samples: NDArray[np.float32]) -> bytes:
        data = self._pending + to_int16(samples).astype("<i2", copy=False).tobytes()
        self._pending = b""
        return data

    def finish(self) -> bytes:
        data, self._pending = self._pending, b""
        return data

    def close(self) -> None:
        self._pending = b""


def streaming_wav_header(sample_rate: int) -> bytes:
    # 16-bit mono PCM; sizes 0xFFFFFFFF because the length is not known yet.
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        WAV_UNKNOWN_SIZE,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        sample_rate,
        sample_rate * 2,
        2,
        16,
        b"data",
        WAV_UNKNOWN_SIZE,
    )


class ByteSink:
    """Write-only, unseekable file object for PyAV to write a container into.

    Being unseekable matters: it tells each muxer it cannot go back and patch
    the header at the end, so every byte it writes is final and can be sent at once.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class PyAVBackend:
    """FLAC, MP3, AAC and Opus through FFmpeg's encoders and muxers.

    With ``seekable=True`` the muxer may patch its header at the end (MP3's Xing frame
    with the encoder delay, FLAC's total length), so nothing is returned before
    :meth:`finish`; that suits whole-file encoding only.
    """

    def __init__(
        self, codec: Codec, in_rate: int, out_rate: int, *, seekable: bool,
        file: IO[bytes] | None = None, chapters: Sequence[Chapter] = (),
    ) -> None:  # fmt: skip
        """``file``: with ``seekable``, the file to write into (default: memory).
        ``chapters``: markers written in the header (where ``codec.chapters``)."""
        self._resampler = Resampler(in_rate, out_rate)
        self._out_rate = out_rate
        self._seekable_sink = (file or io.BytesIO()) if seekable else None
        self._returns_file = seekable and file is None
        """Whether finish() returns the file written in memory (else it is the caller's)."""
        self._sink = ByteSink()
        self._pts = 0
        self._frame_format = "s16" if codec.sample_format == "s16" else "flt"
        options = dict(codec.container_options)
        if not seekable:
            # Hand each packet to the sink as soon as it is muxed instead of
            # waiting for FFmpeg's 32 KiB I/O buffer to fill.
            options["flush_packets"] = "1"
        import av  # on first use: wav and pcm never need PyAV
        from av.audio.stream import AudioStream

        self._container = av.open(
            self._sink if self._seekable_sink is None else self._seekable_sink,
            mode="w",
            format=codec.container,
            container_options=options,
        )
        try:
            stream = self._container.add_stream(codec.encoder, rate=out_rate)
            if not isinstance(stream, AudioStream):  # pragma: no cover - fixed table
                raise TypeError(f"{codec.encoder} is not an audio encoder.")
            self._stream = stream
            self._stream.layout = "mono"
            self._stream.format = codec.sample_format
            if codec.bit_rate is not None:
                self._stream.bit_rate = codec.bit_rate
            if chapters and codec.chapters:  # before the header: ID3v2 and Ogg hold them
                self._container.set_chapters(av_chapters(chapters))
            # Write the header now: the first feed() then has bytes to return even
            # while the encoder still buffers its first frame.
            self._container.start_encoding()
        except BaseException:
            self._container.close()
            raise

    def feed(self, samples: NDArray[np.float32]) -> bytes:
        self._encode(self._resampler.process(samples))
        return self._take()

    def finish(self) -> bytes:
        self._encode(self._resampler.flush())
        self._container.mux(self._stream.encode(None))
        self._container.close()
        if self._returns_file:
            assert isinstance(self._seekable_sink, io.BytesIO)
            return self._seekable_sink.getvalue()
        return self._sink.take()  # empty when writing into the caller's file

    def close(self) -> None:
        self._container.close()

    def _encode(self, samples: NDArray[np.float32]) -> None:
        if samples.size == 0:
            return
        if self._frame_format == "s16":
            # The same conversion as WAV and PCM, rather than FFmpeg's (which scales by
            # 32768), so that every lossless format holds identical samples.
            data: NDArray[np.int16] | NDArray[np.float32] = to_int16(samples)
        else:
            data = np.clip(samples, -1.0, 1.0)
        import av

        frame = av.AudioFrame.from_ndarray(
            data.reshape(1, -1), format=self._frame_format, layout="mono"
        )
        frame.sample_rate = self._out_rate
        frame.pts = self._pts
        frame.time_base = Fraction(1, self._out_rate)
        self._pts += samples.size
        self._container.mux(self._stream.encode(frame))

    def _take(self) -> bytes:
        return b"" if self._seekable_sink is not None else self._sink.take()


def make_backend(fmt: AudioFormat, in_rate: int, *, seekable: bool) -> Backend:
    out_rate = output_sample_rate(fmt, in_rate)
    if fmt.name == "wav":
        return PcmBackend(streaming_wav_header(out_rate))
    if fmt.name == "pcm":
        return PcmBackend()
    return PyAVBackend(CODECS[fmt.name], in_rate, out_rate, seekable=seekable)
