"""Turning float samples into the bytes of an audio file, whole or as a stream.

Six formats: ``wav``, ``pcm`` (raw signed 16-bit little-endian mono), ``flac``,
``mp3``, ``opus`` (in Ogg) and ``aac`` (ADTS). :func:`encode` writes a whole file;
:class:`StreamEncoder` writes the same formats piece by piece, so that a client can
start playing before synthesis ends.

Streaming trade-offs, per format:

* ``wav``: the header comes first, before the length is known, so it uses the
  "unknown length" convention (RIFF and data sizes 0xFFFFFFFF); FFmpeg and
  libsndfile both read such a file to its end. :func:`encode` writes the exact sizes.
* ``flac``: the STREAMINFO block says "total samples unknown" and carries no MD5,
  both allowed by the FLAC format. FFmpeg decodes such a stream fully; libsndfile
  (python-soundfile) opens it but cannot read it, so give soundfile users
  :func:`encode`'s output.
* ``mp3``: no Xing/LAME frame, which needs the final frame count, so players cannot
  trim the encoder delay (~50 ms of leading silence at 22.05 kHz). :func:`encode`
  writes the frame, and decoders that honour it return the exact length.
* ``aac``: ADTS has nowhere to record the encoder delay, streamed or not: decoded audio
  starts with 1024 samples of priming and ends padded up to a whole frame.
* ``opus``: always 48 kHz (Opus only takes 8/12/16/24/48 kHz; 48 kHz keeps every input
  rate exact to resample). The Ogg header records the pre-skip and the last page the
  end, so decoders return the exact length, streamed or not.

Empty input (zero samples) never raises. It gives a valid file with no audio for
``wav`` (44-byte header), ``pcm`` (no bytes) and ``flac`` (header only; FFmpeg reads
zero samples, libsndfile reads "unknown length"). The lossy formats cannot hold zero
samples, so they give only their container's header bytes, which decoders may refuse
to open: ``opus`` the two Ogg header pages, ``mp3`` the ID3 tag (plus, from
:func:`encode`, the Xing frame), ``aac`` nothing at all (ADTS is only frames).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from types import TracebackType
from typing import IO

import soundfile
from numpy.typing import ArrayLike

from voxserve.audio.backends import (
    WAV_HEADER_BYTES,
    WAV_UNKNOWN_SIZE,
    Backend,
    PyAVBackend,
    make_backend,
)
from voxserve.audio.dsp import as_mono_float32, check_rate, to_int16
from voxserve.audio.formats import (
    CODECS,
    FORMATS,
    AudioFormat,
    Chapter,
    format_from_path,
    get_format,
    output_sample_rate,
)
from voxserve.audio.formats import resolve as _resolve

__all__ = [
    "FORMATS",
    "AudioFormat",
    "FileEncoder",
    "StreamEncoder",
    "encode",
    "format_from_path",
    "get_format",
    "output_sample_rate",
    "seal_wav",
]


class StreamEncoder:
    """Encode audio piece by piece, returning each format's bytes as soon as they exist.

    Concatenating everything :meth:`feed` and :meth:`finish` return gives a complete,
    valid file. ``wav`` and ``pcm`` return bytes from the first :meth:`feed`; the
    compressed formats return their header then and their first audio once the codec
    has a whole frame (see the module docstring for each format's trade-offs).

    Use it as a context manager, or call :meth:`close`, so that an abandoned stream
    (a client that hung up) releases FFmpeg's resources at once.
    """

    def __init__(self, fmt: str | AudioFormat, sample_rate: int) -> None:
        self._format = _resolve(fmt)
        self._input_rate = check_rate(sample_rate)
        self._output_rate = output_sample_rate(self._format, self._input_rate)
        self._backend = make_backend(self._format, self._input_rate, seekable=False)
        self._finished = False

    @property
    def format(self) -> AudioFormat:
        """The format being written."""
        return self._format

    @property
    def input_sample_rate(self) -> int:
        """Sample rate that :meth:`feed` expects."""
        return self._input_rate

    @property
    def output_sample_rate(self) -> int:
        """Sample rate of the encoded audio (differs from the input when resampled)."""
        return self._output_rate

    def feed(self, samples: ArrayLike) -> bytes:
        """Encode the next piece of mono float audio; return the bytes ready so far.

        May return ``b""`` while a codec buffers a frame. Values outside [-1, 1] are
        clipped.

        Raises:
            RuntimeError: called after :meth:`finish` or :meth:`close`.
            InvalidParameter: ``samples`` is not one-dimensional.
        """
        if self._finished:
            raise RuntimeError("StreamEncoder.feed() called after finish() or close().")
        return self._backend.feed(as_mono_float32(samples))

    def finish(self) -> bytes:
        """Flush the codec and return the last bytes of the file.

        Calling it again returns ``b""``.
        """
        if self._finished:
            return b""
        self._finished = True
        return self._backend.finish()

    def close(self) -> None:
        """Abandon the stream without finishing the file and free the codec."""
        if not self._finished:
            self._finished = True
            self._backend.close()

    def __enter__(self) -> StreamEncoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class FileEncoder:
    """Encode a whole file piece by piece into an empty, seekable binary file.

    The memory-bounded way to make a long whole file: each :meth:`feed` is encoded and
    written at once, and :meth:`finish` completes the header the way a whole file has it
    (WAV's sizes; FLAC's total length and MP3's Xing frame, patched by FFmpeg's muxer).
    Decoded, the file holds the same samples as :func:`encode` would write.
    """

    def __init__(
        self, fmt: str | AudioFormat, sample_rate: int, file: IO[bytes],
        *, chapters: Sequence[Chapter] = (),
    ) -> None:  # fmt: skip
        """``chapters``: ``(title, start, end)`` in seconds, written into formats whose
        container carries them (:func:`~voxserve.audio.formats.carries_chapters`), left
        out of the others."""
        self._format = _resolve(fmt)
        rate = check_rate(sample_rate)
        if file.tell() != 0:  # FFmpeg's muxers seek to offsets from the file's start
            raise ValueError("FileEncoder writes a new file: give it an empty one.")
        self._file = file
        out_rate = output_sample_rate(self._format, rate)
        self._backend: Backend
        if self._format.name in ("wav", "pcm"):
            self._backend = make_backend(self._format, rate, seekable=False)
        else:
            codec = CODECS[self._format.name]
            self._backend = PyAVBackend(
                codec, rate, out_rate, seekable=True, file=file, chapters=chapters
            )
        self._finished = False

    def feed(self, samples: ArrayLike) -> None:
        """Encode and write the next piece of mono float audio."""
        if self._finished:
            raise RuntimeError("FileEncoder.feed() called after finish() or close().")
        self._file.write(self._backend.feed(as_mono_float32(samples)))

    def finish(self) -> int:
        """Complete the file; returns its size in bytes."""
        if not self._finished:
            self._finished = True
            self._file.write(self._backend.finish())
            if self._format.name == "wav":
                seal_wav(self._file)
        return self._file.tell()

    def close(self) -> None:
        """Abandon the file and free the codec."""
        if not self._finished:
            self._finished = True
            self._backend.close()


def seal_wav(file: IO[bytes]) -> None:
    """Replace a streamed WAV header's unknown sizes with the real ones, once the whole
    file was written; the file stays positioned at its end."""
    end = file.tell()
    data = end - WAV_HEADER_BYTES
    file.seek(4)
    file.write(struct.pack("<I", min(data + 36, WAV_UNKNOWN_SIZE)))
    file.seek(WAV_HEADER_BYTES - 4)
    file.write(struct.pack("<I", min(data, WAV_UNKNOWN_SIZE)))
    file.seek(end)


def encode(samples: ArrayLike, sample_rate: int, fmt: str | AudioFormat) -> bytes:
    """Encode a whole mono float signal as one file in ``fmt``.

    WAV and FLAC go through libsndfile and carry exact lengths in their headers. The
    others go through the same encoder as :class:`StreamEncoder`; MP3 additionally
    gets the Xing/LAME frame that lets decoders drop the encoder delay.

    Raises:
        UnknownFormat: ``fmt`` is not a supported format name.
        InvalidParameter: ``samples`` is not one-dimensional or ``sample_rate`` is not
            a positive integer.
    """
    audio_format = _resolve(fmt)
    rate = check_rate(sample_rate)
    array = as_mono_float32(samples)
    # libsndfile writes no bytes at all for a FLAC file without samples; FFmpeg writes
    # the header, so empty FLAC goes the PyAV way.
    if audio_format.name == "wav" or (audio_format.name == "flac" and array.size > 0):
        buffer = io.BytesIO()
        soundfile.write(
            buffer,
            to_int16(array),
            rate,
            format=audio_format.name.upper(),
            subtype="PCM_16",
        )
        return buffer.getvalue()
    backend = make_backend(audio_format, rate, seekable=True)
    try:
        head = backend.feed(array)
        return head + backend.finish()
    except BaseException:
        backend.close()
        raise
