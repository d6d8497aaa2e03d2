"""Tests for voxserve.audio.encode: every format, whole and streamed, decoded back.

Decoded lengths are checked against what each codec can promise, in samples:

* wav, pcm, flac: lossless and unpadded, so exactly the input.
* opus: the Ogg header records the encoder's pre-skip and the last page's granule
  position records where the audio ends, so decoders trim both; only the resampler's
  rounding (22.05 kHz -> 48 kHz) is left: ±2 samples.
* mp3 from encode(): the Xing/LAME frame records delay and padding, so likewise ±2.
* mp3 streamed: nothing can record the delay in a stream that cannot be patched
  afterwards. Decoders return the 529-sample decoder delay, then the audio, padded to
  a whole frame, plus at most one frame the encoder adds when flushing:
  at most 529 + 2 frames extra (a frame is 1152 samples at 32 kHz and up, 576 below).
* aac (ADTS): no field for the encoder delay at all, so 1024 samples of priming, then
  the audio padded to a whole 1024-sample frame, plus at most one flushed frame:
  at most 3 * 1024 extra.

At 22.05 kHz those bounds are 0 ms, ±0.1 ms, +76 ms and +139 ms.
"""

from __future__ import annotations

import io
import itertools
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from voxserve.audio import (
    FORMATS,
    AudioFormat,
    FileEncoder,
    StreamEncoder,
    carries_chapters,
    encode,
    format_from_path,
    get_format,
    output_sample_rate,
    to_int16,
)
from voxserve.errors import InvalidParameter, UnknownFormat

pytestmark = pytest.mark.inprocess


ToneFactory = Callable[..., NDArray[np.float32]]

ALL_FORMATS = list(FORMATS)
LOSSLESS = [name for name, fmt in FORMATS.items() if not fmt.lossy]
LOSSY = [name for name, fmt in FORMATS.items() if fmt.lossy]
RATES = [8_000, 16_000, 22_050, 24_000, 44_100, 48_000]
SECONDS = 2.5
# Five uneven pieces, the first one tiny, as a synthesizer's first chunk may be.
CUTS = (0.0, 0.013, 0.21, 0.5, 0.77, 1.0)


@pytest.fixture
def tone() -> ToneFactory:
    def make(
        sample_rate: int, seconds: float = SECONDS, frequency: float = 440.0
    ) -> NDArray[np.float32]:
        t = np.arange(round(seconds * sample_rate)) / sample_rate
        return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)

    return make


def stream_in_pieces(samples: NDArray[np.float32], sample_rate: int, fmt: str) -> bytes:
    bounds = [round(cut * samples.size) for cut in CUTS]
    with StreamEncoder(fmt, sample_rate) as encoder:
        chunks = [encoder.feed(samples[a:b]) for a, b in itertools.pairwise(bounds)]
        chunks.append(encoder.finish())
    return b"".join(chunks)


def decode_av(data: bytes) -> tuple[NDArray[np.generic], int]:
    """Decode with FFmpeg; int16 stays int16 so lossless output compares exactly."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    return (np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)), rate


def decode(data: bytes, fmt: str, pcm_rate: int) -> tuple[NDArray[np.generic], int]:
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2"), pcm_rate
    return decode_av(data)


def length_bounds(fmt: str, streamed: bool, expected: int, rate: int) -> tuple[int, int]:
    """Allowed decoded lengths; see the module docstring for the reasoning."""
    if fmt in ("wav", "pcm", "flac"):
        return expected, expected
    if fmt == "opus" or (fmt == "mp3" and not streamed):
        return expected - 2, expected + 2
    if fmt == "mp3":
        frame = 1152 if rate >= 32_000 else 576
        return expected, expected + 529 + 2 * frame
    return expected, expected + 3 * 1024


def assert_is_the_tone(decoded: NDArray[np.generic], rate: int) -> None:
    samples = decoded.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    assert freqs[np.argmax(spectrum)] == pytest.approx(440, abs=1.5)
    # Most of the energy sits at 440 Hz: the codec kept a clean tone, not noise
    # that happens to peak there.
    near = np.abs(freqs - 440) <= 20
    assert spectrum[near].sum() / spectrum.sum() > 0.95


@pytest.mark.parametrize("streamed", [False, True], ids=["encode", "stream"])
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_round_trip(tone: ToneFactory, fmt: str, rate: int, streamed: bool) -> None:
    signal = tone(rate)
    data = stream_in_pieces(signal, rate, fmt) if streamed else encode(signal, rate, fmt)
    out_rate = output_sample_rate(fmt, rate)
    decoded, decoded_rate = decode(data, fmt, out_rate)

    assert decoded_rate == out_rate
    expected = round(signal.size * out_rate / rate)
    low, high = length_bounds(fmt, streamed, expected, out_rate)
    assert low <= decoded.size <= high, (decoded.size, expected)
    if FORMATS[fmt].lossy:
        assert_is_the_tone(decoded, out_rate)
    else:
        np.testing.assert_array_equal(decoded, to_int16(signal))


@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spooled-to-disk"])
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_a_file_encoded_piece_by_piece_is_the_whole_file(
    tone: ToneFactory, fmt: str, spool: bool
) -> None:
    """FileEncoder writes into a file as pieces come: decoded, the same samples and length
    as encode()'s whole file (lossless formats exactly), with the whole file's header.
    It refuses a file that already holds something (FFmpeg seeks from the start)."""
    rate = 22_050
    signal = tone(rate)
    bounds = [round(cut * signal.size) for cut in CUTS]
    file = tempfile.SpooledTemporaryFile(max_size=0 if spool else 1 << 30)  # noqa: SIM115
    with file:
        encoder = FileEncoder(fmt, rate, file)
        for a, b in itertools.pairwise(bounds):
            encoder.feed(signal[a:b])
        size = encoder.finish()
        file.seek(0)
        data = file.read()
        with pytest.raises(ValueError, match="empty"):
            FileEncoder(fmt, rate, file)
    assert size == len(data)
    out_rate = output_sample_rate(fmt, rate)
    decoded, _ = decode(data, fmt, out_rate)
    whole, _ = decode(encode(signal, rate, fmt), fmt, out_rate)
    if FORMATS[fmt].lossy:
        assert abs(decoded.size - whole.size) <= 2
        assert_is_the_tone(decoded, out_rate)
    else:
        assert np.array_equal(decoded, whole)
    if fmt == "wav":
        assert data[4:8] == struct.pack("<I", len(data) - 8)
        assert data[40:44] == struct.pack("<I", len(data) - 44)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_chapters_are_written_where_the_container_carries_them(tone: ToneFactory, fmt: str) -> None:
    """mp3 (ID3 CHAP) and opus (Ogg CHAPTERxx) hold the chapters FileEncoder is given, as
    FFmpeg reads them back; the other formats are written without them."""
    rate = 22_050
    signal = tone(rate)
    chapters = [("Opening", 0.0, 0.25), ("The rest", 0.25, signal.size / rate)]
    with tempfile.TemporaryFile() as file:
        encoder = FileEncoder(fmt, rate, file, chapters=chapters)
        encoder.feed(signal)
        encoder.finish()
        file.seek(0)
        data = file.read()
    assert carries_chapters(FORMATS[fmt]) == (fmt in ("mp3", "opus"))
    if fmt == "pcm":
        return
    with av.open(io.BytesIO(data)) as container:
        found = [
            (c["metadata"]["title"], float(c["start"] * c["time_base"]))
            for c in container.chapters()
        ]
    expected = [(title, start) for title, start, _end in chapters]
    assert found == (expected if carries_chapters(FORMATS[fmt]) else [])


def test_output_rates() -> None:
    assert output_sample_rate("opus", 22_050) == 48_000
    assert output_sample_rate("opus", 8_000) == 48_000
    for fmt in ("wav", "pcm", "flac", "mp3", "aac"):
        assert output_sample_rate(fmt, 22_050) == 22_050
    # 10 kHz is not an MP3 rate; the nearest one is.
    assert output_sample_rate("mp3", 10_000) == 11_025
    assert output_sample_rate("wav", 10_000) == 10_000
    assert StreamEncoder("opus", 22_050).output_sample_rate == 48_000


@pytest.mark.parametrize("fmt", ["mp3", "aac", "opus"])
def test_rate_the_codec_lacks_is_resampled(tone: ToneFactory, fmt: str) -> None:
    data = encode(tone(10_000), 10_000, fmt)
    decoded, rate = decode_av(data)
    assert rate == output_sample_rate(fmt, 10_000) != 10_000
    assert_is_the_tone(decoded, rate)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_soundfile_reads_whole_files(tone: ToneFactory, fmt: str) -> None:
    signal = tone(22_050)
    decoded, rate = soundfile.read(io.BytesIO(encode(signal, 22_050, fmt)), dtype="int16")
    assert rate == 22_050
    np.testing.assert_array_equal(decoded, to_int16(signal))


def test_whole_wav_header_has_exact_sizes(tone: ToneFactory) -> None:
    data = encode(tone(22_050), 22_050, "wav")
    assert data[:4] == b"RIFF"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert data[36:40] == b"data"
    assert struct.unpack_from("<I", data, 40)[0] == len(data) - 44


def test_streamed_wav_header_uses_unknown_length(tone: ToneFactory) -> None:
    signal = tone(22_050)
    data = stream_in_pieces(signal, 22_050, "wav")
    riff, riff_size, wave, fmt_id, fmt_size = struct.unpack_from("<4sI4s4sI", data, 0)
    audio_format, channels, rate, byte_rate, block_align, bits = struct.unpack_from(
        "<HHIIHH", data, 20
    )
    data_id, data_size = struct.unpack_from("<4sI", data, 36)
    assert (riff, wave, fmt_id, data_id) == (b"RIFF", b"WAVE", b"fmt ", b"data")
    assert riff_size == data_size == 0xFFFFFFFF
    assert (fmt_size, audio_format, channels, bits) == (16, 1, 1, 16)
    assert (rate, byte_rate, block_align) == (22_050, 44_100, 2)
    assert len(data) == 44 + 2 * signal.size

    # Both readers take "unknown" to mean "until the end of the data".
    info = soundfile.info(io.BytesIO(data))
    assert info.frames == signal.size
    assert info.duration == pytest.approx(SECONDS)
    decoded, _ = soundfile.read(io.BytesIO(data), dtype="int16")
    np.testing.assert_array_equal(decoded, to_int16(signal))
    decoded_av, rate_av = decode_av(data)
    assert rate_av == 22_050
    assert decoded_av.size == signal.size


def test_streamed_and_whole_pcm_data_are_identical(tone: ToneFactory) -> None:
    signal = tone(22_050)
    assert stream_in_pieces(signal, 22_050, "pcm") == encode(signal, 22_050, "pcm")
    streamed_wav = stream_in_pieces(signal, 22_050, "wav")
    assert streamed_wav[44:] == encode(signal, 22_050, "wav")[44:]


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=4_000), max_size=6))
def test_pcm_stream_is_independent_of_the_split(cuts: list[int]) -> None:
    signal = np.random.default_rng(1).uniform(-1.2, 1.2, 4_000).astype(np.float32)
    bounds = [0, *sorted(cuts), signal.size]
    encoder = StreamEncoder("pcm", 16_000)
    data = b"".join(encoder.feed(signal[a:b]) for a, b in itertools.pairwise(bounds))
    assert data + encoder.finish() == to_int16(signal).astype("<i2").tobytes()


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_first_feed_of_a_sentence_returns_audio(tone: ToneFactory, fmt: str) -> None:
    """A one-second sentence yields audio bytes at once, beyond any header."""
    header = StreamEncoder(fmt, 22_050).feed(np.zeros(0, dtype=np.float32))
    with StreamEncoder(fmt, 22_050) as encoder:
        first = encoder.feed(tone(22_050, seconds=1.0))
    assert len(first) > len(header) + 1_000


@pytest.mark.parametrize("fmt", ["wav", "pcm"])
def test_uncompressed_formats_return_bytes_from_a_tiny_first_feed(
    tone: ToneFactory, fmt: str
) -> None:
    with StreamEncoder(fmt, 22_050) as encoder:
        assert len(encoder.feed(tone(22_050, seconds=0.01))) >= 2 * 220


def test_values_outside_the_range_are_clipped() -> None:
    loud = np.array([-3.0, -1.0, 0.0, 1.0, 3.0], dtype=np.float32)
    assert np.frombuffer(encode(loud, 8_000, "pcm"), dtype="<i2").tolist() == [
        -32767,
        -32767,
        0,
        32767,
        32767,
    ]


@pytest.mark.parametrize("streamed", [False, True], ids=["encode", "stream"])
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_empty_input(fmt: str, streamed: bool) -> None:
    """The behaviour the encode module docstring promises for zero samples."""
    empty = np.zeros(0, dtype=np.float32)
    if streamed:
        encoder = StreamEncoder(fmt, 22_050)
        data = encoder.feed(empty) + encoder.finish()
    else:
        data = encode(empty, 22_050, fmt)

    if fmt in ("wav", "flac"):
        decoded, rate = decode_av(data)
        assert (decoded.size, rate) == (0, 22_050)
    if fmt == "wav":
        assert len(data) == 44
        assert soundfile.info(io.BytesIO(data)).frames == 0
    elif fmt == "flac":
        assert data.startswith(b"fLaC")
    elif fmt in ("pcm", "aac"):
        assert data == b""
    elif fmt == "opus":
        assert data.startswith(b"OggS")
        assert b"OpusHead" in data
        assert b"OpusTags" in data
    else:
        assert data.startswith(b"ID3")


def test_stream_encoder_lifecycle(tone: ToneFactory) -> None:
    encoder = StreamEncoder("mp3", 22_050)
    assert encoder.format is FORMATS["mp3"]
    assert encoder.input_sample_rate == 22_050
    encoder.feed(tone(22_050, seconds=0.5))
    assert encoder.finish()
    assert encoder.finish() == b""
    with pytest.raises(RuntimeError, match="after finish"):
        encoder.feed(tone(22_050, seconds=0.1))


def test_closed_stream_encoder_refuses_more_audio(tone: ToneFactory) -> None:
    with StreamEncoder("opus", 22_050) as encoder:
        encoder.feed(tone(22_050, seconds=0.3))
    with pytest.raises(RuntimeError):
        encoder.feed(tone(22_050, seconds=0.1))
    assert encoder.finish() == b""


def test_multichannel_input_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="mono"):
        encode(np.zeros((100, 2), dtype=np.float32), 22_050, "wav")
    with pytest.raises(InvalidParameter, match="mono"):
        StreamEncoder("mp3", 22_050).feed(np.zeros((2, 100), dtype=np.float32))


@pytest.mark.parametrize("rate", [0, -8_000, 22_050.0])
def test_bad_sample_rate_is_refused(rate: int) -> None:
    with pytest.raises(InvalidParameter) as info:
        StreamEncoder("wav", rate)
    assert info.value.param == "sample_rate"


def test_get_format() -> None:
    mp3 = get_format("mp3")
    assert (mp3.name, mp3.content_type, mp3.extension) == ("mp3", "audio/mpeg", ".mp3")
    assert get_format(" MP3 ") is mp3
    assert get_format("opus").sample_rate == 48_000
    assert get_format("pcm").content_type == "audio/pcm"
    assert {fmt.content_type for fmt in FORMATS.values()} == {
        "audio/wav",
        "audio/pcm",
        "audio/flac",
        "audio/mpeg",
        "audio/ogg",
        "audio/aac",
    }


def test_unknown_format_names_the_supported_ones() -> None:
    with pytest.raises(UnknownFormat) as info:
        get_format("m4a")
    error = info.value
    assert error.param == "format"
    assert error.supported == ["wav", "pcm", "flac", "mp3", "opus", "aac"]
    assert "'m4a'" in error.message
    assert "wav, pcm, flac, mp3, opus, aac" in error.message
    with pytest.raises(UnknownFormat):
        encode(np.zeros(10, dtype=np.float32), 22_050, "m4a")
    with pytest.raises(UnknownFormat):
        StreamEncoder("vorbis", 22_050)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("out.wav", "wav"),
        ("out.flac", "flac"),
        ("out.mp3", "mp3"),
        ("out.opus", "opus"),
        ("out.ogg", "opus"),
        ("out.aac", "aac"),
        ("out.pcm", "pcm"),
        ("out.raw", "pcm"),
        ("dir.d/OUT.WAV", "wav"),
        (Path("/tmp/speech.Mp3"), "mp3"),
    ],
)
def test_format_from_path(path: str | Path, name: str) -> None:
    assert format_from_path(path) is FORMATS[name]


@pytest.mark.parametrize("path", ["speech.m4a", "speech", "speech.wav.bak"])
def test_unknown_extension_names_the_supported_ones(path: str) -> None:
    with pytest.raises(UnknownFormat) as info:
        format_from_path(path)
    assert info.value.param == "output"
    assert {".wav", ".flac", ".mp3", ".opus", ".ogg", ".aac", ".pcm", ".raw"} == set(
        info.value.supported
    )
    assert ".ogg" in info.value.message


def test_formats_are_read_only() -> None:
    with pytest.raises(TypeError):
        FORMATS["m4a"] = FORMATS["aac"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        FORMATS["wav"].name = "wave"  # type: ignore[misc]
    assert all(isinstance(fmt, AudioFormat) for fmt in FORMATS.values())
    assert all(fmt.streamable for fmt in FORMATS.values())
    assert LOSSLESS == ["wav", "pcm", "flac"]
    assert LOSSY == ["mp3", "opus", "aac"]


def test_stream_encoder_takes_an_audio_format(tone: ToneFactory) -> None:
    data = encode(tone(16_000), 16_000, FORMATS["flac"])
    assert data.startswith(b"fLaC")
