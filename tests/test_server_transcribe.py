"""The speech-to-text routes over real HTTP on the fake recognizer: shapes, bad input,
streaming, cancellation, admission and logs (the real model: test_transcribe_live.py)."""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import soundfile

from fake_server import FakeServer, fake_settings, wait_until
from fakes import FakeEngine, FakeRecognizer

pytestmark = pytest.mark.inprocess

ROUTE = "/v1/audio/transcriptions"


def wav(seconds: float, *, level: float = 0.1, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, np.full(int(seconds * rate), level, np.float32), rate, format="WAV")
    return out.getvalue()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeEngine(), fake_settings(), recognizer=FakeRecognizer()) as running:
        yield running


def post(
    server: FakeServer, data: dict[str, Any], audio: bytes, route: str = ROUTE
) -> httpx.Response:
    return httpx.post(
        server.url + route, data=data, files={"file": ("a.wav", audio, "audio/wav")}, timeout=30
    )


def assert_error(response: httpx.Response, status: int, param: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["message"]
    return dict(error)


def client(server: FakeServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


# -- what the official client gets --------------------------------------------------


def test_the_openai_client_gets_every_response_format(server: FakeServer) -> None:
    audio = ("speech.wav", wav(65))
    api = client(server).audio.transcriptions
    result = api.create(file=audio, model="whisper-1")
    assert result.text == "window 0 window 1 window 2"
    assert result.usage is not None
    assert result.usage.seconds == pytest.approx(65)  # type: ignore[union-attr]
    assert api.create(file=audio, model="whisper-1", response_format="text") == (
        "window 0 window 1 window 2\n"
    )
    assert api.create(file=audio, model="fake-asr", response_format="srt").startswith(
        "1\n00:00:00,000 --> 00:00:30,000\nwindow 0\n\n2\n"
    )
    assert api.create(file=audio, model="whisper-1", response_format="vtt").startswith("WEBVTT")
    verbose = api.create(
        file=audio, model="whisper-1", response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )  # fmt: skip
    assert verbose.duration == pytest.approx(65)
    assert [s.text.strip() for s in verbose.segments or []] == [
        "window 0", "window 1", "window 2",
    ]  # fmt: skip
    words = verbose.words or []
    assert [w.word for w in words][:2] == ["window", "0"]
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(words))


def test_the_openai_client_streams_deltas_then_done(server: FakeServer) -> None:
    events = list(
        client(server).audio.transcriptions.create(
            file=("speech.wav", wav(65)), model="whisper-1", stream=True
        )
    )
    assert [e.type for e in events] == ["transcript.text.delta"] * 3 + ["transcript.text.done"]
    deltas = "".join(e.delta for e in events[:-1])  # type: ignore[union-attr]
    assert deltas == events[-1].text == "window 0 window 1 window 2"  # type: ignore[union-attr]


def test_silence_is_200_with_empty_text(server: FakeServer) -> None:
    response = post(server, {"model": "whisper-1"}, wav(2, level=0.0))
    assert response.status_code == 200
    assert response.json()["text"] == ""


def test_models_lists_the_recognizers_and_openai_names(server: FakeServer) -> None:
    ids = [m["id"] for m in httpx.get(server.url + "/v1/models").json()["data"]]
    assert {"fake-asr", "whisper-1", "gpt-4o-transcribe", "tts-1"} <= set(ids)


# -- bad input: the status, an error that names the field, nothing else disturbed ---


@pytest.mark.parametrize(
    ("fields", "audio", "status", "param"),
    [
        ({"model": "whisper-1"}, b"", 400, "file"),
        ({"model": "whisper-1"}, b"plain text, not a recording " * 20, 400, "file"),
        ({"model": "whisper-1"}, wav(1)[:40], 400, "file"),
        ({"model": "whisper-1"}, b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(30), 400, "file"),
        ({"model": "whisper-9"}, wav(1), 404, "model"),
        ({"model": "whisper-1", "response_format": "diarized_json"}, wav(1), 400,
         "response_format"),
        ({"model": "whisper-1", "language": "xx"}, wav(1), 400, "language"),
        ({"model": "whisper-1", "temperature": "2"}, wav(1), 400, "temperature"),
        ({"model": "whisper-1", "timestamp_granularities[]": "letter"}, wav(1), 400,
         "timestamp_granularities[]"),
    ],
    ids=["empty", "text", "truncated-header", "corrupt-wav", "unknown-model", "format",
         "language", "temperature", "granularity"],
)  # fmt: skip
def test_bad_input_gets_its_status_and_names_the_field(
    server: FakeServer, fields: dict[str, str], audio: bytes, status: int, param: str
) -> None:
    assert_error(post(server, fields, audio), status, param)
    assert post(server, {"model": "whisper-1"}, wav(1)).json()["text"] == "window 0"


def test_translation_with_an_english_only_model_says_why(server: FakeServer) -> None:
    error = assert_error(
        post(server, {"model": "whisper-1"}, wav(1), "/v1/audio/translations"), 400, "model"
    )
    assert "English only" in error["message"]


def test_a_missing_file_names_it(server: FakeServer) -> None:
    response = httpx.post(server.url + ROUTE, data={"model": "whisper-1"})
    assert response.status_code in (400, 422)
    assert response.json()["error"]["param"] == "file"


def test_limits_on_upload_size_and_audio_length() -> None:
    settings = fake_settings(asr_max_upload_bytes=64_000, asr_max_seconds=1.5)
    with FakeServer(FakeEngine(), settings, recognizer=FakeRecognizer()) as server:
        error = assert_error(post(server, {"model": "whisper-1"}, wav(3)), 413, "file")
        assert "64000" in error["message"]
        error = assert_error(post(server, {"model": "whisper-1"}, wav(1.8)), 413, "file")
        assert "1.5 seconds" in error["message"]
        assert post(server, {"model": "whisper-1"}, wav(1)).status_code == 200
        # The speech routes keep their own (smaller) body limit.
        big = {"model": "tts-1", "voice": "fake-voice", "input": "x" * 2_000_000}
        assert httpx.post(server.url + "/v1/audio/speech", json=big).status_code == 413


def test_speech_recognition_turned_off_is_a_clear_404() -> None:
    with FakeServer(FakeEngine(), fake_settings()) as server:
        error = assert_error(post(server, {"model": "whisper-1"}, wav(1)), 404, None)
        assert "VOXSERVE_ASR" in error["message"]


# -- streaming, hang-ups and admission ----------------------------------------------


def test_the_first_delta_comes_before_the_recording_is_done_and_a_hang_up_stops_it() -> None:
    recognizer = FakeRecognizer(seconds_per_step=0.2)
    with FakeServer(FakeEngine(), fake_settings(), recognizer=recognizer) as server:
        with httpx.stream(
            "POST", server.url + ROUTE, data={"model": "whisper-1", "stream": "true"},
            files={"file": ("a.wav", wav(300))}, timeout=30,
        ) as response:  # fmt: skip
            assert response.headers["content-type"].startswith("text/event-stream")
            first = next(line for line in response.iter_lines() if line.startswith("data:"))
            assert json.loads(first[5:])["type"] == "transcript.text.delta"
            assert len(recognizer.steps) < 10  # ten windows: most are still to come
        # Gone: the step running finishes, then nothing more of the recording is done.
        registry = server.transcriber.metrics.registry  # type: ignore[union-attr]
        labels = {"model": "fake-asr", "task": "transcribe", "outcome": "cancelled"}
        wait_until(
            lambda: registry.get_sample_value("voxserve_asr_requests_total", labels) == 1,
            timeout=5, what="the recording to be given up",
        )  # fmt: skip
        wait_until(lambda: recognizer.running == 0, timeout=5, what="the last step to end")
        wait_until(lambda: server.app.state.admission.admitted == 0, timeout=5, what="ticket")
        assert len(recognizer.steps) <= 3
        lanes = server.app.state.transcriber.lanes
        wait_until(lambda: lanes.free == 1, timeout=5, what="the lane to be given back")


def test_a_transcription_is_admitted_by_its_estimated_work_and_released() -> None:
    # 300 s of audio at the initial pace (0.1 s per second of audio) is 30 s of work on
    # one lane: past the 10 s wait bound for whatever comes next.
    recognizer = FakeRecognizer(seconds_per_step=0.2)
    with FakeServer(FakeEngine(), fake_settings(), recognizer=recognizer) as server:
        admission = server.app.state.admission
        with httpx.stream(
            "POST", server.url + ROUTE, data={"model": "whisper-1", "stream": "true"},
            files={"file": ("a.wav", wav(300))}, timeout=30,
        ) as response:  # fmt: skip
            lines = response.iter_lines()  # kept: a dropped iterator closes the connection
            next(lines)
            assert admission.work > 10
            refused = post(server, {"model": "whisper-1"}, wav(1))
            assert_error(refused, 503, None)
            assert int(refused.headers["retry-after"]) >= 1
            # Speech does not wait behind transcription (it keeps its share of the
            # lanes), so it is still admitted.
            speech = {"model": "tts-1", "voice": "fake-voice", "input": "Hello."}
            assert httpx.post(server.url + "/v1/audio/speech", json=speech).status_code == 200
        # The client hung up: what its recording had left is given back.
        wait_until(lambda: admission.admitted == 0, timeout=5, what="the ticket to be closed")
        assert admission.work == 0.0
        assert post(server, {"model": "whisper-1"}, wav(1)).status_code == 200


def test_a_failing_model_fails_one_request_and_the_server_goes_on() -> None:
    recognizer = FakeRecognizer(fail_at_step=1)
    with FakeServer(FakeEngine(), fake_settings(), recognizer=recognizer) as server:
        error = assert_error(post(server, {"model": "whisper-1"}, wav(65)), 500, None)
        assert "failed" in error["message"]
        assert post(server, {"model": "whisper-1"}, wav(5)).json()["text"] == "window 0"
        ok = server.transcriber.metrics.registry.get_sample_value(  # type: ignore[union-attr]
            "voxserve_asr_requests_total",
            {"model": "fake-asr", "task": "transcribe", "outcome": "ok"},
        )
        assert ok == 1


@pytest.mark.parametrize("log_text", [False, True])
def test_the_transcript_reaches_the_log_only_when_asked(
    log_text: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = fake_settings(log_text=log_text)
    with (
        caplog.at_level(logging.INFO, logger="voxserve.access"),
        FakeServer(FakeEngine(), settings, recognizer=FakeRecognizer()) as server,
    ):
        assert post(server, {"model": "whisper-1"}, wav(2)).status_code == 200
        wait_until(
            lambda: any(r.__dict__.get("route") == ROUTE for r in caplog.records),
            timeout=5, what="the access line",
        )  # fmt: skip
    line = next(r for r in caplog.records if r.__dict__.get("route") == ROUTE)
    assert line.__dict__["audio_seconds"] == pytest.approx(2.0)
    assert line.__dict__["model"] == "fake-asr"
    assert ("transcript" in line.__dict__) is log_text
    assert all("window 0" not in r.getMessage() for r in caplog.records)
