"""Speech to text below the HTTP layer: uploads decoded, models found, captions written,
and the service's steps on the lanes, on the fake recognizer (no model)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
import srt
import webvtt

from fakes import FakeRecognizer
from voxserve.asr import AsrConfig, Transcriber, Transcription, decode_upload, discover
from voxserve.asr import models as asr_models
from voxserve.asr.captions import render
from voxserve.asr.whisper import Info, Segment, Word
from voxserve.captions import timestamp
from voxserve.errors import AudioTooLong, ConfigError, InvalidAudio, InvalidParameter
from voxserve.lanes import Lanes
from voxserve.types import FloatArray

pytestmark = pytest.mark.inprocess

RATE = 22_050

#: (container format, codec, file suffix) of every kind of upload the API takes.
UPLOADS = [
    ("wav", "pcm_s16le", "wav"),
    ("mp3", "libmp3lame", "mp3"),
    ("ogg", "libopus", "ogg"),
    ("flac", "flac", "flac"),
    ("ipod", "aac", "m4a"),
    ("webm", "libopus", "webm"),
]


def tone(seconds: float, rate: int = RATE) -> FloatArray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def encode(samples: FloatArray, rate: int, container: str, codec: str) -> bytes:
    """``samples`` as a file of ``container`` with ``codec``, made with PyAV."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as file:
        stream = file.add_stream(codec, rate=48_000 if codec == "libopus" else rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(
            format=stream.codec_context.format, layout="mono", rate=stream.codec_context.rate
        )
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            file.mux(stream.encode(piece))
        file.mux(stream.encode(None))
    return out.getvalue()


# -- decoding uploads -------------------------------------------------------------------


@pytest.mark.parametrize(("container", "codec", "suffix"), UPLOADS)
def test_every_upload_format_decodes_to_16khz_mono_of_the_same_length(
    container: str, codec: str, suffix: str
) -> None:
    audio = decode_upload(encode(tone(2.0), RATE, container, codec))
    assert audio.dtype == np.float32
    # Encoders pad the start (mp3, aac, opus priming): within a tenth of a second.
    assert abs(audio.size / 16_000 - 2.0) < 0.1, suffix
    assert 0.1 < float(np.abs(audio).max()) < 0.5


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"these are words, not sound " * 40, "not audio"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "not taken"),
    ],
    ids=["empty", "text", "png-header"],
)
def test_what_is_not_audio_is_refused_naming_the_file(data: bytes, says: str) -> None:
    with pytest.raises(InvalidAudio, match=says) as caught:
        decode_upload(data)
    assert caught.value.param == "file"


def test_a_truncated_upload_is_refused_or_decodes_what_arrived() -> None:
    whole = encode(tone(2.0), RATE, "wav", "pcm_s16le")
    with pytest.raises(InvalidAudio):
        decode_upload(whole[:30])  # the header cut short: nothing to decode
    part = decode_upload(whole[: len(whole) // 2])  # half the samples: what is there
    assert 0.8 < part.size / 16_000 < 1.2


def test_corrupt_bytes_inside_a_compressed_file_never_raise_anything_else() -> None:
    data = bytearray(encode(tone(2.0), RATE, "mp3", "libmp3lame"))
    rng = np.random.default_rng(7)
    for position in rng.integers(200, len(data), 400):
        data[position] = int(rng.integers(0, 256))
    try:
        audio = decode_upload(bytes(data))
    except InvalidAudio:
        return
    assert np.all(np.isfinite(audio))


def test_a_file_without_an_audio_stream_is_refused() -> None:
    out = io.BytesIO()
    with av.open(out, mode="w", format="matroska") as file:
        stream = file.add_stream("ffv1", rate=1)
        stream.width, stream.height = 16, 16
        stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame.reformat(format="yuv420p")), *stream.encode(None)]:
            file.mux(packet)
    with pytest.raises(InvalidAudio, match="no audio stream"):
        decode_upload(out.getvalue())


def test_audio_past_the_limit_is_refused_before_it_is_all_decoded() -> None:
    data = encode(tone(5.0), RATE, "flac", "flac")
    with pytest.raises(AudioTooLong) as caught:
        decode_upload(data, max_seconds=2.0)
    assert caught.value.param == "file"
    assert decode_upload(data, max_seconds=6.0).size == pytest.approx(5 * 16_000, abs=400)


# -- models -----------------------------------------------------------------------------


def test_the_bundled_model_is_found_and_is_the_default(tmp_path: Path) -> None:
    models = discover(None, tmp_path)
    assert next(iter(models)) == asr_models.TINY_EN
    assert models[asr_models.TINY_EN].english_only
    assert (models[asr_models.TINY_EN].directory() / "model.bin").is_file()


def test_a_model_directory_becomes_the_default(tmp_path: Path) -> None:
    model = tmp_path / "my-whisper"
    model.mkdir()
    (model / "model.bin").write_bytes(b"x")
    (model / "config.json").write_text("{}")
    models = discover(str(model), tmp_path / "cache")
    assert next(iter(models)) == "my-whisper"
    assert asr_models.TINY_EN in models


@pytest.mark.parametrize("setting", ["whisper-huge", "/nonexistent/whisper"])
def test_an_unknown_model_setting_names_the_variable(setting: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        discover(setting, tmp_path)
    assert caught.value.param == "VOXSERVE_ASR_MODEL"


def _parts(tmp_path: Path, halves: tuple[bytes, bytes]) -> list[Path]:
    parts = []
    for index, half in enumerate(halves, start=1):
        part = tmp_path / f"part{index}"
        part.mkdir()
        (part / f"model.bin.part{index}").write_bytes(half)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            (part / name).write_text(name)
        parts.append(part)
    return parts


def test_split_weights_are_joined_once_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    halves = (b"a" * 1000, b"b" * 500)
    monkeypatch.setattr(asr_models, "BASE_SIZE", 1500)
    monkeypatch.setattr(asr_models, "BASE_SHA256", hashlib.sha256(b"".join(halves)).hexdigest())
    target = tmp_path / "joined"
    joined = asr_models.join_parts(_parts(tmp_path, halves), target)
    assert (joined / "model.bin").read_bytes() == b"".join(halves)
    assert (joined / "config.json").read_text() == "config.json"
    stamp = (joined / "model.bin").stat().st_mtime_ns
    asr_models.join_parts([tmp_path / "gone1", tmp_path / "gone2"], target)  # not read again
    assert (joined / "model.bin").stat().st_mtime_ns == stamp


def test_damaged_split_weights_are_refused_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asr_models, "BASE_SIZE", 1500)
    target = tmp_path / "joined"
    with pytest.raises(ConfigError, match="reinstall"):
        asr_models.join_parts(_parts(tmp_path, (b"a" * 1000, b"c" * 500)), target)
    assert not (target / "model.bin").exists()
    assert not [p for p in target.iterdir() if p.name.startswith(".model.bin")]


# -- captions -------------------------------------------------------------------------


def _result() -> Transcription:
    segments = [
        Segment(1, 0, 0.0, 2.5, " Hello there.", (1,), 0.0, -0.2, 1.1, 0.01,
                (Word(0.0, 1.0, " Hello", 0.9), Word(1.0, 2.5, " there.", 0.9))),
        Segment(2, 250, 2.5, 3661.25, " A long one, with, commas.", (2,), 0.2, -0.3, 1.2, 0.02),
        Segment(3, 300, 3661.25, 3662.0, "  ", (3,), 0.0, -0.3, 1.2, 0.9),
    ]  # fmt: skip
    return Transcription("fake-asr", Info("en", 3662.0, 3662.0), segments)


def test_timestamps() -> None:
    assert timestamp(0) == "00:00:00.000"
    assert timestamp(3661.2504, decimal=",") == "01:01:01,250"
    assert timestamp(-0.01) == "00:00:00.000"


def test_srt_parses_with_a_subtitle_parser() -> None:
    cues = list(srt.parse(render(_result(), "srt")))
    assert [c.content for c in cues] == ["Hello there.", "A long one, with, commas."]
    assert [c.index for c in cues] == [1, 2]
    assert cues[1].end.total_seconds() == pytest.approx(3661.25)


def test_vtt_parses_with_a_subtitle_parser() -> None:
    cues = webvtt.from_buffer(io.StringIO(render(_result(), "vtt")))
    assert [c.text for c in cues] == ["Hello there.", "A long one, with, commas."]
    assert cues[1].end == "01:01:01.250"


def test_json_text_and_verbose_json() -> None:
    result = _result()
    assert json.loads(render(result, "json")) == {
        "text": "Hello there. A long one, with, commas.",
        "usage": {"type": "duration", "seconds": 3662.0},
    }
    assert render(result, "text") == "Hello there. A long one, with, commas.\n"
    verbose = json.loads(render(result, "verbose_json", granularities=("word",)))
    assert "segments" not in verbose
    assert [w["word"] for w in verbose["words"]] == ["Hello", "there."]
    verbose = json.loads(render(result, "verbose_json", task="translate"))
    assert verbose["task"] == "translate"
    assert verbose["language"] == "english"
    assert [s["id"] for s in verbose["segments"]] == [0, 1, 2]
    assert "words" not in verbose


# -- the service, on the fake recognizer ------------------------------------------------


def _service(recognizer: FakeRecognizer, lanes: Lanes | None = None) -> Transcriber:
    return Transcriber(
        {recognizer.model.id: recognizer.model},
        lanes or Lanes(2),
        config=AsrConfig(max_seconds=600),
        loader=lambda _: recognizer,
    )


def _speech(seconds: float) -> FloatArray:
    return np.full(int(seconds * 16_000), 0.1, dtype=np.float32)


def test_long_recordings_take_turns_window_by_window() -> None:
    recognizer = FakeRecognizer(seconds_per_step=0.01)
    service = _service(recognizer, Lanes(1))

    async def main() -> list[str]:
        loaded = await service.load(service.model(None))

        async def one() -> str:
            audio = _speech(95)
            result = await service.transcribe(loaded, audio, service.options(loaded, audio))
            return result.text

        return list(await asyncio.gather(one(), one(), one()))

    texts = asyncio.run(main())
    assert texts == ["window 0 window 1 window 2 window 3"] * 3
    recordings = [recording for recording, _window in recognizer.steps]
    # Round robin: no recording runs two windows while another waits.
    assert recordings[:6] == [1, 2, 3, 1, 2, 3]
    assert recognizer.most_running == 1


def test_steps_never_run_on_more_lanes_than_there_are() -> None:
    recognizer = FakeRecognizer(seconds_per_step=0.005)
    service = _service(recognizer, Lanes(2))

    async def main() -> None:
        loaded = await service.load(service.model(None))
        audio = _speech(65)
        options = service.options(loaded, audio)
        await asyncio.gather(*(service.transcribe(loaded, audio, options) for _ in range(6)))

    asyncio.run(main())
    assert recognizer.most_running == 2


def test_a_recording_left_early_stops_after_the_current_step() -> None:
    recognizer = FakeRecognizer(seconds_per_step=0.02)
    lanes = Lanes(1)
    service = _service(recognizer, lanes)

    async def main() -> None:
        loaded = await service.load(service.model(None))
        audio = _speech(300)  # ten windows
        _info, segments = await service.start(loaded, audio, service.options(loaded, audio))
        async for _segment in segments:
            break
        await segments.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)
        assert lanes.free == 1

    asyncio.run(main())
    assert len(recognizer.steps) <= 2


def test_windows_behind_are_reported_for_admission() -> None:
    recognizer = FakeRecognizer()
    service = _service(recognizer)
    done: list[int] = []

    async def main() -> None:
        loaded = await service.load(service.model(None))
        audio = _speech(95)
        assert len(service.costs(loaded.model, audio)) == 4
        _info, segments = await service.start(
            loaded, audio, service.options(loaded, audio), on_window=done.append
        )
        async for _segment in segments:
            pass

    asyncio.run(main())
    assert done == [0, 1, 2]  # the last window ends at 95 s, short of 120


def test_silence_is_heard_as_nothing() -> None:
    recognizer = FakeRecognizer()
    service = _service(recognizer)

    async def main() -> Transcription:
        loaded = await service.load(service.model(None))
        audio = np.zeros(16_000 * 3, dtype=np.float32)
        return await service.transcribe(loaded, audio, service.options(loaded, audio))

    result = asyncio.run(main())
    assert result.text == ""
    assert result.segments == []
    assert result.info.duration == pytest.approx(3.0)


def test_a_failing_model_fails_its_request_as_an_engine_error() -> None:
    from voxserve.errors import EngineError

    recognizer = FakeRecognizer(fail_at_step=1)
    lanes = Lanes(1)
    service = _service(recognizer, lanes)

    async def main() -> None:
        loaded = await service.load(service.model(None))
        audio = _speech(65)
        with pytest.raises(EngineError, match="the fake model failed"):
            await service.transcribe(loaded, audio, service.options(loaded, audio))
        assert lanes.free == 1

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"task": "translate"}, "model"),
        ({"language": "de"}, "language"),
        ({"temperature": 1.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
    ],
)
def test_options_the_model_cannot_honour_name_the_field(
    options: dict[str, object], param: str
) -> None:
    recognizer = FakeRecognizer()
    service = _service(recognizer)
    with pytest.raises(InvalidParameter) as caught:
        service.options(recognizer, _speech(1), **options)  # type: ignore[arg-type]
    assert caught.value.param == param


def test_voice_activity_filtering_is_on_for_long_recordings_only() -> None:
    recognizer = FakeRecognizer(english_only=False)
    service = _service(recognizer)
    assert not service.options(recognizer, _speech(10)).vad
    assert service.options(recognizer, _speech(31)).vad
    assert service.options(recognizer, _speech(1), language=" DE ").language == "de"
