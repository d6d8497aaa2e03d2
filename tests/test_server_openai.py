"""The OpenAI-compatible API over real HTTP, driven by the official ``openai`` client.

One real server per module (tests/live.py), the real Piper voice. Requests that compare
audio lengths ask for deterministic synthesis (``noise_scale=0, noise_w=0``, voxserve's
extension fields, sent through ``extra_body``), so the same text always gives the same
number of samples and any difference comes from the codec.

Decoded lengths against the exact WAV of the same text (``stream=false``), in samples at
the format's own rate; the bounds are the codec's, as measured and explained in
tests/test_audio_encode.py (the API streams by default, so these are streamed files):

* wav, pcm, flac: lossless and unpadded, so exactly equal.
* opus: 48 kHz; the Ogg pre-skip and end granule trim the codec's padding, only the
  22.05 -> 48 kHz resampler's rounding is left: within 2 samples.
* mp3 (streamed, no Xing frame): 529 samples of decoder delay plus padding to a whole
  576-sample frame plus at most one flushed frame: 0 to 529 + 2 * 576 extra (76 ms).
* aac (ADTS): 1024 samples of priming plus padding plus at most one flushed frame:
  0 to 3 * 1024 extra (139 ms).
"""

from __future__ import annotations

import base64
import io
import json
import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import av
import httpx
import numpy as np
import openai
import pytest
import soundfile

from live import LiveServer

if TYPE_CHECKING:
    from asr import Transcriber

VOICE_ID = "en_US-joe-medium"
RATE = 22_050
DETERMINISTIC: dict[str, Any] = {"noise_scale": 0, "noise_w": 0}
#: Skip the cache read, so that streamed tests see real synthesis, never a replay.
NO_CACHE = {"Cache-Control": "no-cache"}
TWO_SENTENCES = "The weather is lovely today. Let us take a walk by the river."
SIX_SENTENCES = (
    "The library opens at nine. Children gather by the door. "
    "A librarian unlocks the gate. Everyone hurries to the shelves. "
    "The reading room fills quickly. Silence settles over the tables."
)

#: Extra decoded samples each format may add to the exact WAV, as (low, high), in
#: samples at that format's output rate (see the module docstring).
LENGTH_BOUNDS: dict[str, tuple[int, int]] = {
    "wav": (0, 0),
    "pcm": (0, 0),
    "flac": (0, 0),
    "opus": (-2, 2),
    "mp3": (0, 529 + 2 * 576),
    "aac": (0, 3 * 1024),
}
OUTPUT_RATES = {"opus": 48_000}

Speak = Callable[..., bytes]


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer() as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def speak(client: openai.OpenAI) -> Speak:
    """``speak(text, fmt, **options)``: deterministic audio bytes through the client."""

    def make(text: str, response_format: str = "wav", **options: Any) -> bytes:
        extra = {**DETERMINISTIC, **options.pop("extra_body", {})}
        response = client.audio.speech.create(
            model="tts-1",
            voice=options.pop("voice", "alloy"),
            input=text,
            response_format=response_format,  # type: ignore[arg-type]
            extra_body=extra,
            **options,
        )
        return response.content

    return make


@pytest.fixture(scope="module")
def exact_frames(speak: Speak) -> Callable[[str], int]:
    """Samples in the exact, non-streamed WAV of ``text`` (memoized per module)."""
    known: dict[str, int] = {}

    def frames(text: str) -> int:
        if text not in known:
            data = speak(text, "wav", extra_body={"stream": False})
            known[text] = soundfile.info(io.BytesIO(data)).frames
        return known[text]

    return frames


def decode(data: bytes, fmt: str) -> tuple[int, int]:
    """(decoded samples, sample rate) of an encoded file; pcm is s16le mono at 22.05 kHz."""
    if fmt == "pcm":
        assert len(data) % 2 == 0, "pcm must be whole 16-bit samples"
        return len(data) // 2, RATE
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.channels == 1
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples, stream.codec_context.sample_rate


@pytest.mark.parametrize("fmt", list(LENGTH_BOUNDS))
def test_every_response_format_decodes_at_its_rate_with_the_wav_duration(
    fmt: str, speak: Speak, exact_frames: Callable[[str], int]
) -> None:
    data = speak(TWO_SENTENCES, fmt)
    samples, rate = decode(data, fmt)

    assert rate == OUTPUT_RATES.get(fmt, RATE)
    expected = exact_frames(TWO_SENTENCES) * rate / RATE
    low, high = LENGTH_BOUNDS[fmt]
    assert low <= samples - expected <= high, (fmt, samples, expected)
    assert samples > 2 * rate  # two sentences: well over two seconds


def test_streaming_response_arrives_in_several_chunks_that_decode(
    client: openai.OpenAI, exact_frames: Callable[[str], int]
) -> None:
    """Six sentences are sent one by one as they are made, not as one finished file."""
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=SIX_SENTENCES, response_format="mp3",
        extra_body=DETERMINISTIC, extra_headers=NO_CACHE,
    ) as response:  # fmt: skip
        assert response.headers["content-type"] == "audio/mpeg"
        assert response.headers.get("x-cache") != "hit"
        assert "content-length" not in response.headers
        chunks = [chunk for chunk in response.iter_bytes() if chunk]

    assert len(chunks) >= 3, [len(c) for c in chunks]
    samples, rate = decode(b"".join(chunks), "mp3")
    assert rate == RATE
    low, high = LENGTH_BOUNDS["mp3"]
    assert low <= samples - exact_frames(SIX_SENTENCES) <= high


def test_speed_two_halves_the_duration_up_to_piper_frame_rounding(speak: Speak) -> None:
    """speed=2.0 gives 0.5 to 0.65 of the speed=1.0 length.

    Piper gives every phoneme token (and the pad token between phonemes) a whole number
    of 256-sample frames: ceil(duration * length_scale / speed), at least one. Halving
    can never give less than half (ceil(d/2) >= ceil(d)/2), but tokens of one or two
    frames keep one: this sentence has 117 tokens in 225 frames at speed 1 and 135 at
    speed 2, a ratio of 0.60. 0.65 leaves room without accepting "no change" (1.0).
    """
    text = "Please remember to bring your umbrella tomorrow morning."
    normal = decode(speak(text, "pcm", speed=1.0), "pcm")[0]
    fast = decode(speak(text, "pcm", speed=2.0), "pcm")[0]

    assert 0.5 <= fast / normal <= 0.65, (fast, normal)


def test_installed_voice_id_works_as_voice_and_matches_its_alias(speak: Speak) -> None:
    text = "Good evening, and welcome."
    by_id = speak(text, "wav", voice=VOICE_ID, extra_body={"stream": False})
    by_alias = speak(text, "wav", voice="alloy", extra_body={"stream": False})

    audio_id, rate = soundfile.read(io.BytesIO(by_id), dtype="float32")
    audio_alias, _ = soundfile.read(io.BytesIO(by_alias), dtype="float32")
    assert rate == RATE
    assert audio_id.shape == audio_alias.shape
    assert audio_id.size > RATE // 2
    np.testing.assert_allclose(audio_id, audio_alias, atol=1e-3)


def test_models_list_offers_tts_1(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]

    assert "tts-1" in ids
    assert "tts-1-hd" in ids


def test_voices_endpoint_lists_the_piper_voice_and_maps_alloy_to_it(server: LiveServer) -> None:
    response = httpx.get(server.url + "/v1/audio/voices", timeout=30)

    assert response.status_code == 200
    body = response.json()
    voices = {v["id"]: v for v in body["voices"]}
    assert voices[VOICE_ID]["language"] == "en_US"
    assert voices[VOICE_ID]["sample_rate"] == RATE
    assert voices[VOICE_ID]["engine"] == "piper"
    assert body["default"] == VOICE_ID
    assert body["aliases"]["alloy"] == VOICE_ID


def test_stream_false_returns_content_length_and_a_wav_with_real_sizes(
    client: openai.OpenAI,
) -> None:
    response = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input=TWO_SENTENCES, response_format="wav",
        extra_body={**DETERMINISTIC, "stream": False},
    )  # fmt: skip
    data = response.content

    assert int(response.headers["content-length"]) == len(data)
    riff, riff_size, wave = struct.unpack("<4sI4s", data[:12])
    assert (riff, wave) == (b"RIFF", b"WAVE")
    assert riff_size == len(data) - 8
    info = soundfile.info(io.BytesIO(data))
    assert info.samplerate == RATE
    assert info.channels == 1
    assert info.subtype == "PCM_16"
    data_at = data.index(b"data")
    (data_size,) = struct.unpack("<I", data[data_at + 4 : data_at + 8])
    assert data_size == info.frames * 2 == len(data) - data_at - 8


def test_sse_deltas_concatenate_to_a_decodable_file_then_done(
    server: LiveServer, exact_frames: Callable[[str], int]
) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": SIX_SENTENCES,
            "response_format": "mp3", "stream_format": "sse", **DETERMINISTIC}  # fmt: skip
    events: list[dict[str, Any]] = []
    url = server.url + "/v1/audio/speech"
    with httpx.stream("POST", url, json=body, headers=NO_CACHE, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers.get("x-cache") != "hit"
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))

    kinds = [event["type"] for event in events]
    assert kinds[-1] == "speech.audio.done"
    assert kinds[:-1] == ["speech.audio.delta"] * (len(kinds) - 1)
    assert len(kinds) - 1 >= 3  # one delta or more per sentence, not one big blob
    audio = b"".join(base64.b64decode(event["audio"]) for event in events[:-1])
    samples, rate = decode(audio, "mp3")
    assert rate == RATE
    low, high = LENGTH_BOUNDS["mp3"]
    assert low <= samples - exact_frames(SIX_SENTENCES) <= high
    assert events[-1]["usage"]["input_tokens"] > 0


def test_unknown_model_raises_not_found_naming_the_model_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.audio.speech.create(model="tts-9000", voice="alloy", input="Hello.")

    assert caught.value.status_code == 404
    assert caught.value.param == "model"
    assert caught.value.code == "model_not_found"
    assert "tts-9000" in caught.value.message


def test_unknown_voice_raises_not_found_listing_installed_voices(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.audio.speech.create(model="tts-1", voice="no-such-voice", input="Hello.")

    assert caught.value.param == "voice"
    assert caught.value.code == "voice_not_found"
    assert "no-such-voice" in caught.value.message
    assert VOICE_ID in caught.value.message


@pytest.mark.slow
def test_mp3_speaks_the_abbreviation_money_and_number(
    speak: Speak, transcriber: Transcriber
) -> None:
    """Normalization reaches the voice: "Dr.", "$3.50" and "2" are spoken as words.

    Both sides normalize to 7 words ("doctor smith paid $3.50 for 2 tickets"); the
    bound allows one of them misheard (1/7 = 0.14), which Whisper tiny.en does on about
    1 word in 100 of this voice (tests/asr.py). Measured: 0.0. A skipped "$3.50" or "Dr."
    read as letters costs two words or more.
    """
    from asr import word_error_rate

    heard = transcriber.transcribe_file(speak("Dr. Smith paid $3.50 for 2 tickets.", "mp3"))

    wer = word_error_rate("Doctor Smith paid three dollars and fifty cents for two tickets.", heard)
    assert wer <= 0.15, heard


@pytest.mark.parametrize(
    ("model", "voice"),
    [
        ("gpt-4o-mini-tts-2025-12-15", "marin"),
        ("gpt-4o-mini-tts", "cedar"),
        ("tts-1-hd", {"id": VOICE_ID}),
    ],
)
def test_the_newest_names_of_openais_api_speak(
    client: openai.OpenAI, model: str, voice: Any
) -> None:
    """Built-in voices, models and the custom-voice object of OpenAI's current document."""
    response = client.audio.speech.with_raw_response.create(
        model=model, voice=voice, input="Hello there.", response_format="wav",
        instructions="Speak warmly.",
    )  # fmt: skip

    assert response.headers["x-voice"] == VOICE_ID
    assert soundfile.info(io.BytesIO(response.content)).samplerate == RATE


def test_an_unknown_custom_voice_raises_not_found_on_voice_id(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.audio.speech.create(model="tts-1", voice={"id": "voice_1234"}, input="Hello.")

    assert caught.value.param == "voice.id"
    assert caught.value.code == "voice_not_found"
