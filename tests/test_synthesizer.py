"""Tests for voxserve.synthesizer: the library API on the real bundled Piper voice.

One Synthesizer serves the module (the model loads once). Requests use noise 0, so the same
text always gives the same samples and durations can be compared exactly.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import math
from collections.abc import Iterator
from typing import Any, TypeVar

import av
import numpy as np
import pytest
import soundfile

from voxserve import Settings, SynthesisParams, SynthesisRequest, Synthesizer
from voxserve.audio import FORMATS, to_int16
from voxserve.configs import SynthesisConfig
from voxserve.engines.voices import VoiceLibrary
from voxserve.errors import (
    EmptyText,
    InvalidParameter,
    TextTooLong,
    UnknownFormat,
    UnknownVoice,
    VoxserveError,
)
from voxserve.settings import DEFAULT_VOICE
from voxserve.types import AudioChunk

E = TypeVar("E", bound=VoxserveError)
RATE = 22050
MAX_CHARS = 500
TWO = "Hello world. This is a test."
THREE = "The first sentence is here. A second one follows! Is this the third?"


def det(**changes: Any) -> SynthesisParams:
    """Deterministic parameters (no Piper noise) with ``changes``."""
    return SynthesisParams(noise_scale=0, noise_w=0, **changes)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(max_input_chars=MAX_CHARS, espeak=True, cache="off")


@pytest.fixture(scope="module")
def synth(settings: Settings) -> Iterator[Synthesizer]:
    synthesizer = Synthesizer.from_settings(settings)
    yield synthesizer
    synthesizer.close()


def chunks_of(synth: Synthesizer, text: str, **params: Any) -> list[AudioChunk]:
    return list(synth.stream(SynthesisRequest(text, params=det(**params))))


def samples_of(synth: Synthesizer, text: str, **params: Any) -> np.ndarray:
    return np.concatenate([c.samples for c in chunks_of(synth, text, **params)])


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Decode an encoded file with PyAV (FFmpeg): mono float samples and their rate."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        return np.concatenate(frames), int(stream.codec_context.sample_rate)


# -- formats ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_samples(synth: Synthesizer) -> int:
    """Samples in TWO's audio at the voice's rate: every format must hold this much."""
    return len(samples_of(synth, TWO))


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus", "aac"])
def test_synthesize_every_format_decodes_at_its_rate_and_duration(
    synth: Synthesizer, reference_samples: int, fmt: str
) -> None:
    audio = synth.synthesize(SynthesisRequest(TWO, format=fmt, params=det()))
    expected_rate = 48000 if fmt == "opus" else RATE
    assert audio.format == fmt
    assert audio.content_type == FORMATS[fmt].content_type
    assert audio.sample_rate == expected_rate
    assert audio.sentences == 2
    assert audio.duration == pytest.approx(reference_samples / RATE, abs=1e-9)

    samples, rate = decode(audio.data)
    assert rate == expected_rate
    decoded = len(samples) / rate
    if fmt == "aac":
        # ADTS records no encoder delay: 1024 samples of priming, then padding to a frame.
        assert 0 <= decoded - audio.duration <= 2048 / RATE
    else:
        assert decoded == pytest.approx(audio.duration, abs=1e-3)
    assert np.abs(samples).max() > 0.1


def test_synthesize_pcm_is_raw_16_bit_of_the_exact_length(
    synth: Synthesizer, reference_samples: int
) -> None:
    audio = synth.synthesize(SynthesisRequest(TWO, format="pcm", params=det()))
    assert audio.sample_rate == RATE
    pcm = np.frombuffer(audio.data, dtype="<i2")
    assert len(pcm) == reference_samples
    assert np.array_equal(pcm, to_int16(samples_of(synth, TWO)))


def test_format_names_are_case_insensitive(synth: Synthesizer) -> None:
    assert synth.synthesize(SynthesisRequest("Hi.", format="MP3", params=det())).format == "mp3"


# -- streaming -------------------------------------------------------------------------------


def test_stream_yields_one_chunk_per_sentence_in_order(synth: Synthesizer) -> None:
    chunks = chunks_of(synth, THREE)
    assert [c.index for c in chunks] == [0, 1, 2]
    assert [c.text for c in chunks] == [
        "The first sentence is here.",
        "A second one follows!",
        "Is this the third?",
    ]
    for chunk in chunks:
        assert chunk.sample_rate == RATE
        assert chunk.samples.dtype == np.float32
        assert chunk.duration > 0.5


def test_concatenated_stream_equals_synthesized_wav(synth: Synthesizer) -> None:
    streamed = samples_of(synth, THREE)
    audio = synth.synthesize(SynthesisRequest(THREE, format="wav", params=det()))
    wav, rate = soundfile.read(io.BytesIO(audio.data), dtype="int16")
    assert rate == RATE
    assert np.array_equal(wav, to_int16(streamed))


def test_stream_encoded_gives_the_same_samples_as_synthesize(synth: Synthesizer) -> None:
    request = SynthesisRequest(THREE, format="flac", params=det())
    streamed = b"".join(synth.stream_encoded(request))
    whole = synth.synthesize(request)
    a, _ = decode(streamed)
    b, _ = decode(whole.data)
    assert np.array_equal(a, b)


def test_text_normalization_reaches_the_chunks(synth: Synthesizer) -> None:
    (chunk,) = chunks_of(synth, "It costs $3.50.")
    assert chunk.text == "It costs three dollars and fifty cents."


# -- parameters -------------------------------------------------------------------------------


def test_speed_2_gives_roughly_half_the_duration(synth: Synthesizer) -> None:
    """Not exactly half: Piper rounds each phoneme up to whole frames, so speed 2 gives
    ~0.56-0.63 of the length on this voice (measured over six sentences)."""
    normal = len(samples_of(synth, THREE, sentence_silence=0))
    fast = len(samples_of(synth, THREE, sentence_silence=0, speed=2.0))
    slow = len(samples_of(synth, THREE, sentence_silence=0, speed=0.5))
    assert 0.5 < fast / normal < 0.7
    assert 1.5 < slow / normal < 2.1


def test_volume_half_halves_the_peak(synth: Synthesizer) -> None:
    loud = samples_of(synth, TWO)
    quiet = samples_of(synth, TWO, volume=0.5)
    assert len(quiet) == len(loud)
    assert float(np.abs(quiet).max()) == pytest.approx(0.5 * float(np.abs(loud).max()), rel=1e-6)


def test_volume_zero_is_silence(synth: Synthesizer) -> None:
    assert not samples_of(synth, "Hi.", volume=0.0).any()


def test_sample_rate_16000_resamples(synth: Synthesizer, reference_samples: int) -> None:
    chunks = chunks_of(synth, TWO, sample_rate=16000)
    assert all(c.sample_rate == 16000 for c in chunks)
    total = sum(len(c.samples) for c in chunks)
    assert abs(total - reference_samples * 16000 / RATE) <= 2

    audio = synth.synthesize(SynthesisRequest(TWO, format="wav", params=det(sample_rate=16000)))
    assert audio.sample_rate == 16000
    wav, rate = soundfile.read(io.BytesIO(audio.data), dtype="float32")
    assert rate == 16000
    assert len(wav) == total


def test_sentence_silence_adds_exactly_one_pause_between_sentences(synth: Synthesizer) -> None:
    """Three sentences have two gaps; no pause follows the last sentence."""
    none = chunks_of(synth, THREE, sentence_silence=0)
    half = chunks_of(synth, THREE, sentence_silence=0.5)
    extra = [len(b.samples) - len(a.samples) for a, b in zip(none, half, strict=True)]
    assert extra == [RATE // 2, RATE // 2, 0]
    assert not half[0].samples[-RATE // 2 :].any()


def test_default_parameters_use_the_voice_noise_and_still_speak(synth: Synthesizer) -> None:
    (chunk,) = synth.stream(SynthesisRequest("Hello there."))
    assert 0.4 < chunk.duration < 2.0
    assert np.abs(chunk.samples).max() > 0.1


# -- bad input ------------------------------------------------------------------------------


def error_of(synth: Synthesizer, request: SynthesisRequest, kind: type[E]) -> E:
    """The error of exactly type ``kind`` that streaming ``request`` raises."""
    with pytest.raises(kind) as info:
        list(synth.stream(request))
    assert type(info.value) is kind
    return info.value


def test_empty_text_is_empty_text(synth: Synthesizer) -> None:
    assert error_of(synth, SynthesisRequest(""), EmptyText).param == "input"


def test_whitespace_only_text_is_empty_text(synth: Synthesizer) -> None:
    assert error_of(synth, SynthesisRequest("  \n\t \u3000 "), EmptyText).param == "input"


def test_control_characters_only_is_empty_text(synth: Synthesizer) -> None:
    error = error_of(synth, SynthesisRequest("\x00\x07\x1b\ufffd"), EmptyText)
    assert "no speakable text" in error.message


def test_emoji_only_text_is_empty_text(synth: Synthesizer) -> None:
    error = error_of(synth, SynthesisRequest("😀🎉 👍🏽 ❤️"), EmptyText)
    assert error.param == "input"
    assert "no speakable text" in error.message


def test_text_over_max_input_chars_is_text_too_long(synth: Synthesizer) -> None:
    error = error_of(synth, SynthesisRequest("a" * (MAX_CHARS + 1)), TextTooLong)
    assert (error.length, error.limit, error.param) == (MAX_CHARS + 1, MAX_CHARS, "input")
    assert "VOXSERVE_MAX_INPUT_CHARS" in error.message


def test_text_at_max_input_chars_is_accepted(synth: Synthesizer) -> None:
    text = "word " * (MAX_CHARS // 5)
    assert len(text) == MAX_CHARS
    assert len(synth.plan(SynthesisRequest(text)).sentences) >= 1


def test_control_characters_and_replacement_chars_are_dropped_the_rest_spoken(
    synth: Synthesizer,
) -> None:
    dirty = samples_of(synth, "Hello\x00 wor\ufffdld\x07. Good\x1bbye\u200b now.")
    clean = samples_of(synth, "Hello world. Goodbye now.")
    assert np.array_equal(dirty, clean)


def test_mixed_scripts_do_not_crash(synth: Synthesizer) -> None:
    chunks = chunks_of(synth, "Hello Привет 你好")
    assert len(chunks) == 1
    assert chunks[0].duration > 0.5
    assert np.abs(chunks[0].samples).max() > 0.1


def test_unknown_voice_lists_the_installed_voices(synth: Synthesizer) -> None:
    error = error_of(synth, SynthesisRequest("Hi.", voice="en_GB-nobody-high"), UnknownVoice)
    assert error.param == "voice"
    assert DEFAULT_VOICE in error.available
    assert "espeak-de" in error.available
    assert "en_GB-nobody-high" in error.message
    assert DEFAULT_VOICE in error.message


def test_openai_voice_names_are_the_openai_routes_business(synth: Synthesizer) -> None:
    """The library API takes voice ids; /v1/audio/speech maps OpenAI's names to them."""
    error_of(synth, SynthesisRequest("Hi.", voice="alloy"), UnknownVoice)


def test_unknown_format_is_unknown_format(synth: Synthesizer) -> None:
    error = error_of(synth, SynthesisRequest("Hi.", format="xyz"), UnknownFormat)
    assert error.param == "format"
    assert set(error.supported) == {"wav", "pcm", "flac", "mp3", "opus", "aac"}
    assert "'xyz'" in error.message


@pytest.mark.parametrize("speed", [0.0, 5.0, math.nan, math.inf, -1.0])
def test_speed_out_of_range_is_invalid_parameter_speed(synth: Synthesizer, speed: float) -> None:
    request = SynthesisRequest("Hi.", params=SynthesisParams(speed=speed))
    error = error_of(synth, request, InvalidParameter)
    assert error.param == "speed"
    assert "from 0.25 to 4" in error.message


def test_negative_volume_is_invalid_parameter_volume(synth: Synthesizer) -> None:
    request = SynthesisRequest("Hi.", params=SynthesisParams(volume=-1))
    assert error_of(synth, request, InvalidParameter).param == "volume"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        (SynthesisParams(sample_rate=1000), "sample_rate"),
        (SynthesisParams(noise_scale=3.0), "noise_scale"),
        (SynthesisParams(noise_w=-0.1), "noise_w"),
        (SynthesisParams(sentence_silence=60.0), "sentence_silence"),
        (SynthesisParams(speaker=-1), "speaker"),
        (SynthesisParams(speaker=2), "speaker"),
    ],
)
def test_other_parameters_out_of_range_name_themselves(
    synth: Synthesizer, params: SynthesisParams, param: str
) -> None:
    request = SynthesisRequest("Hi.", params=params)
    assert error_of(synth, request, InvalidParameter).param == param


# -- espeak through the same pipeline ------------------------------------------------------------


def test_an_espeak_voice_speaks_through_the_pipeline(synth: Synthesizer) -> None:
    audio = synth.synthesize(SynthesisRequest("Guten Tag. Wie geht es?", voice="espeak-de"))
    assert audio.sentences == 2
    assert audio.sample_rate == RATE
    assert audio.duration > 1.0


# -- async ------------------------------------------------------------------------------------


def run_async(settings: Settings, request: SynthesisRequest) -> tuple[list[AudioChunk], bytes]:
    """astream and asynthesize of ``request`` on a Synthesizer of its own, closed in the loop
    that used it."""

    async def main() -> tuple[list[AudioChunk], bytes]:
        asynth = Synthesizer(
            VoiceLibrary.from_settings(settings), SynthesisConfig.from_settings(settings)
        )
        try:
            plan = asynth.plan(request)
            chunks = [chunk async for chunk in asynth.astream(plan)]
            audio = await asynth.asynthesize(plan)
            return chunks, audio.data
        finally:
            await asynth.aclose()

    return asyncio.run(main())


def sentences_of(chunks: list[AudioChunk]) -> list[AudioChunk]:
    """One chunk per sentence: a head chunk (complete=False) joined to the rest after it."""
    joined: list[AudioChunk] = []
    parts: list[AudioChunk] = []
    for chunk in chunks:
        parts.append(chunk)
        if chunk.complete:
            samples = np.concatenate([p.samples for p in parts])
            assert {(p.index, p.text) for p in parts} == {(chunk.index, chunk.text)}
            joined.append(AudioChunk(samples, chunk.sample_rate, chunk.index, chunk.text))
            parts = []
    assert parts == []
    return joined


def test_async_stream_and_synthesize_match_the_sync_output(
    synth: Synthesizer, settings: Settings
) -> None:
    """With one lane and whole sentences, astream/asynthesize (through the scheduler) give
    the same chunks and bytes as stream/synthesize (direct calls): the same session runs
    both."""
    request = SynthesisRequest(THREE, format="wav", params=det())
    sync_chunks = list(synth.stream(request))
    sync_audio = synth.synthesize(request)

    one_lane = {"lanes": 1, "stream_head_seconds": 0.0}
    chunks, data = run_async(settings.model_copy(update=one_lane), request)
    assert [(c.index, c.text) for c in chunks] == [(c.index, c.text) for c in sync_chunks]
    for a, b in zip(chunks, sync_chunks, strict=True):
        assert np.array_equal(a.samples, b.samples)
    assert data == sync_audio.data


def test_async_output_on_lanes_matches_the_sync_output_to_rounding(
    synth: Synthesizer, settings: Settings
) -> None:
    """With two lanes, read-ahead sentences run on the one-thread lane session: the same
    lengths, and samples that differ only by float rounding (the threads sum in another
    order; measured: below 1e-6)."""
    request = SynthesisRequest(THREE, format="wav", params=det())
    sync_chunks = list(synth.stream(request))

    lanes = {"threads": 2, "lanes": 2, "stream_head_seconds": 0.0}
    chunks, _ = run_async(settings.model_copy(update=lanes), request)
    assert [len(c.samples) for c in chunks] == [len(c.samples) for c in sync_chunks]
    for a, b in zip(chunks, sync_chunks, strict=True):
        assert float(np.abs(a.samples - b.samples).max()) < 1e-5


def test_a_stream_sends_the_head_of_its_first_sentence_then_the_rest(
    synth: Synthesizer, settings: Settings
) -> None:
    """The first sentence arrives as its first half second (whole vocoder frames), then the
    rest; joined, every sentence is the sync output to within 1e-5. The whole response
    (asynthesize) is the same audio."""
    text = "The first sentence is here, and it goes on for a while longer. A second one."
    request = SynthesisRequest(text, format="wav", params=det())
    sync_chunks = list(synth.stream(request))

    chunks, data = run_async(settings.model_copy(update={"stream_head_seconds": 0.5}), request)
    assert [(c.index, c.complete) for c in chunks] == [(0, False), (0, True), (1, True)]
    assert chunks[0].duration == pytest.approx(43 * 256 / 22050)  # round(0.5 s / 256 samples)
    joined = sentences_of(chunks)
    assert [len(c.samples) for c in joined] == [len(c.samples) for c in sync_chunks]
    for a, b in zip(joined, sync_chunks, strict=True):
        assert float(np.abs(a.samples - b.samples).max()) < 1e-5
    whole, rate = decode(data)
    assert rate == 22050
    assert len(whole) == sum(len(c.samples) for c in sync_chunks)


def test_a_first_sentence_not_much_longer_than_the_head_comes_whole(
    settings: Settings,
) -> None:
    chunks, _ = run_async(
        settings.model_copy(update={"stream_head_seconds": 1.0}),
        SynthesisRequest("Hi there. Bye.", params=det()),
    )
    assert [(c.index, c.complete) for c in chunks] == [(0, True), (1, True)]


def test_an_espeak_stream_comes_in_whole_sentences(settings: Settings) -> None:
    """espeak-ng cannot stop early: its head is the whole sentence."""
    text = "This is a rather long first sentence for the robot voice to speak. Then another."
    chunks, _ = run_async(settings, SynthesisRequest(text, voice="espeak-en-us", params=det()))
    assert [(c.index, c.complete) for c in chunks] == [(0, True), (1, True)]


def test_a_synthesizer_serves_successive_event_loops_cleanly(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A library user may call asyncio.run more than once with one Synthesizer; each loop's
    requests, with idle time between them, are served without errors."""
    asynth = Synthesizer(
        VoiceLibrary.from_settings(settings), SynthesisConfig.from_settings(settings)
    )
    plan = asynth.plan(SynthesisRequest("Hi.", params=det()))

    async def twice() -> int:
        first = len([c async for c in asynth.astream(plan)])
        await asyncio.sleep(0.05)  # the worker goes idle
        second = len([c async for c in asynth.astream(plan)])
        return first + second

    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            for _ in range(2):
                assert asyncio.run(asyncio.wait_for(twice(), timeout=30)) == 2
            gc.collect()
    finally:
        asynth.close()
        for sched in asynth.schedulers():
            # Collect a crashed worker's error here, so it is not printed at interpreter exit.
            task = sched._task
            if task is not None and task.done() and not task.cancelled():
                task.exception()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
