"""The Coqui TTS and MaryTTS compatible routes over real HTTP.

One real server per module (tests/live.py), the real Piper voice. Both protocols return
complete WAV files, so every reply must open with libsndfile (real header sizes).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import soundfile

from live import LiveServer

VOICE_ID = "en_US-joe-medium"
RATE = 22_050
MARY_FIELDS = {
    "INPUT_TYPE": "TEXT",
    "OUTPUT_TYPE": "AUDIO",
    "AUDIO": "WAVE_FILE",
    "LOCALE": "en_US",
    "VOICE": "cmu-slt-hsmm",  # MaryTTS's stock voice, not installed here
}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer() as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def assert_wav_speech(response: httpx.Response, *, min_seconds: float) -> None:
    """A complete mono 22.05 kHz WAV of at least ``min_seconds``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert int(response.headers["content-length"]) == len(response.content)
    info = soundfile.info(io.BytesIO(response.content))
    assert (info.samplerate, info.channels) == (RATE, 1)
    assert info.duration >= min_seconds
    assert len(response.content) == 44 + info.frames * 2  # header sizes match the data


def assert_error(response: httpx.Response, status: int, param: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert error["param"] == param
    assert error["message"]
    return error


COQUI_REQUESTS: dict[str, dict[str, Any]] = {
    "get-query": {"method": "GET", "params": {"text": "Coqui clients send text in the query."}},
    "post-form": {"method": "POST", "data": {"text": "Coqui clients can post a form too."}},
    "post-json": {"method": "POST", "json": {"text": "Or a small JSON object."}},
    "post-text-header": {"method": "POST", "headers": {"text": "The text can be a header."}},
    "speaker-and-style": {
        "method": "GET",
        "params": {"text": "Speaker and style given.", "speaker_id": VOICE_ID, "style_wav": ""},
    },
}


@pytest.mark.parametrize("shape", list(COQUI_REQUESTS))
def test_coqui_tts_returns_wav_for_every_request_shape(shape: str, http: httpx.Client) -> None:
    """Query, form, JSON and the ``text`` header all reach the synthesizer.

    Text that did not arrive would be a 400 (empty input), never a WAV.
    """
    request = COQUI_REQUESTS[shape]
    response = http.request(url="/api/tts", **request)

    assert_wav_speech(response, min_seconds=0.8)
    assert response.headers["x-voice"] == VOICE_ID


@pytest.mark.parametrize(
    "request_args",
    [
        pytest.param({"method": "GET", "params": {"text": ""}}, id="get-empty"),
        pytest.param({"method": "GET"}, id="get-missing"),
        pytest.param({"method": "POST", "data": {"text": "   "}}, id="post-blank"),
    ],
)
def test_coqui_tts_without_text_is_400_naming_input(
    request_args: dict[str, Any], http: httpx.Client
) -> None:
    error = assert_error(http.request(url="/api/tts", **request_args), 400, "input")

    assert error["code"] == "empty_input"


def test_coqui_tts_unknown_speaker_is_404_listing_voices(http: httpx.Client) -> None:
    response = http.get("/api/tts", params={"text": "Hello.", "speaker_id": "p225"})

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "voice_not_found"
    assert "p225" in error["message"]
    assert VOICE_ID in error["message"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_marytts_process_falls_back_to_an_installed_voice_of_the_locale(
    method: str, http: httpx.Client
) -> None:
    fields = {**MARY_FIELDS, "INPUT_TEXT": f"MaryTTS clients use {method} requests."}
    if method == "GET":
        response = http.get("/process", params=fields)
    else:
        response = http.post("/process", data=fields)

    assert_wav_speech(response, min_seconds=1.0)
    assert response.headers["x-voice"] == VOICE_ID


def test_marytts_unknown_voice_uses_a_voice_of_another_locale_when_asked(
    http: httpx.Client,
) -> None:
    """LOCALE picks the fallback, so a German request is not read by the English voice."""
    voices = http.get("/v1/audio/voices").json()["voices"]
    german = [v["id"] for v in voices if v["language"].lower().startswith("de")]
    assert german, "no German voice installed (the espeak-ng voices are on by default)"

    fields = {**MARY_FIELDS, "LOCALE": "de", "VOICE": "bits1-hsmm", "INPUT_TEXT": "Guten Tag."}
    response = http.get("/process", params=fields)

    assert_wav_speech(response, min_seconds=0.3)
    assert response.headers["x-voice"] == german[0]


def test_marytts_process_without_input_text_is_400_naming_input(http: httpx.Client) -> None:
    assert_error(http.post("/process", data=MARY_FIELDS), 400, "input")


def test_marytts_process_refuses_phonemes_output(http: httpx.Client) -> None:
    fields = {**MARY_FIELDS, "INPUT_TEXT": "Hello.", "OUTPUT_TYPE": "PHONEMES"}

    assert_error(http.get("/process", params=fields), 400, "OUTPUT_TYPE")


def test_marytts_voices_lists_the_piper_voice_with_its_locale(http: httpx.Client) -> None:
    response = http.get("/voices")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert any(line.startswith(f"{VOICE_ID} en_US ") for line in lines), lines[:5]
    assert all(len(line.split()) == 4 for line in lines)  # name locale gender type


def test_marytts_locales_include_en_us(http: httpx.Client) -> None:
    response = http.get("/locales")

    assert response.status_code == 200
    assert "en_US" in response.text.splitlines()
