"""Live speech over WebSocket on the fake engine, through the real server (uvicorn and every
middleware): the protocol, its errors, API keys, limits, and cancellation when the client
goes. The same route on the real model: tests/test_server_live_model.py."""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from fake_server import FakeServer, fake_settings, wait_until
from fakes import FakeEngine
from voxserve.server.limits import LIVE_PATHS
from voxserve.server.live import LIVE_PATH
from voxserve.server.protocol import MAX_WS_MESSAGE_BYTES

pytestmark = pytest.mark.inprocess

TEXT = "Hello there. Dr. Smith is 3.5 meters tall. Goodbye now."


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeEngine(), fake_settings()) as running:
        yield running


@contextmanager
def session(
    server: FakeServer, start: dict[str, Any] | None = None, **connect_args: Any
) -> Iterator[ClientConnection]:
    """A connected session whose start message (when given) is already sent."""
    url = server.url.replace("http://", "ws://") + LIVE_PATH
    with connect(url, proxy=None, open_timeout=10, **connect_args) as ws:
        if start is not None:
            ws.send(json.dumps({"type": "start", **start}))
        yield ws


def send(ws: ClientConnection, kind: str, **fields: Any) -> None:
    ws.send(json.dumps({"type": kind, **fields}))


def received(ws: ClientConnection) -> tuple[bytes, list[dict[str, Any]]]:
    """Everything until the server closes: the audio bytes and the JSON events."""
    audio = b""
    events = []
    try:
        while True:
            message = ws.recv(timeout=20)
            if isinstance(message, bytes):
                audio += message
            else:
                events.append(json.loads(message))
    except ConnectionClosed:
        pass
    return audio, events


def speak(
    server: FakeServer, pieces: list[str], **start: Any
) -> tuple[bytes, list[dict[str, Any]]]:
    with session(server, {"voice": "fake-voice", **start}) as ws:
        for piece in pieces:
            send(ws, "text", delta=piece)
        send(ws, "end")
        audio, events = received(ws)
        assert ws.close_code == 1000, events
    return audio, events


def http_speech(server: FakeServer, text: str, **fields: Any) -> bytes:
    body = {"input": text, "voice": "fake-voice", "response_format": "pcm", **fields}
    response = httpx.post(server.url + "/v1/audio/speech", json=body, timeout=20)
    assert response.status_code == 200, response.text
    return response.content


def words(text: str) -> list[str]:
    return [w + " " for w in text.split(" ")]


def expect_error(ws: ClientConnection, code: str, close: int) -> dict[str, Any]:
    _audio, events = received(ws)
    assert events[-1]["type"] == "error", events
    error: dict[str, Any] = events[-1]["error"]
    assert error["code"] == code, error
    assert set(error) >= {"message", "type", "param", "code"}
    assert ws.close_code == close
    return error


def test_the_route_is_one_the_limits_know() -> None:
    assert LIVE_PATH in LIVE_PATHS


# -- the protocol ------------------------------------------------------------------------------


def test_word_by_word_gives_the_http_audio_and_sentence_events(server: FakeServer) -> None:
    audio, events = speak(server, words(TEXT))
    assert audio == http_speech(server, TEXT)
    started, *sentences, done = events
    assert started == {
        "type": "started", "voice": "fake-voice", "response_format": "pcm",
        "content_type": "audio/pcm", "sample_rate": 8000,
    }  # fmt: skip
    assert [s["text"] for s in sentences] == [
        "Hello there.",
        "Doctor Smith is three point five meters tall.",
        "Goodbye now.",
    ]
    assert [s["index"] for s in sentences] == [0, 1, 2]
    # each sentence starts where the previous one and the sentence silence (0.2 s) end
    assert sentences[0]["offset_seconds"] == 0
    for before, after in itertools.pairwise(sentences):
        assert after["offset_seconds"] == pytest.approx(
            before["offset_seconds"] + before["duration_seconds"] + 0.2
        )
    total = sentences[-1]["offset_seconds"] + sentences[-1]["duration_seconds"]
    assert total == pytest.approx(len(audio) / 2 / 8000)
    assert done == {
        "type": "done", "sentences": 3, "audio_seconds": pytest.approx(total),
        "usage": {"input_tokens": len(TEXT) + 1, "output_tokens": 0,
                  "total_tokens": len(TEXT) + 1},
    }  # fmt: skip
    assert server.metric("voxserve_live_sessions_total", outcome="ok") == 1
    assert server.metric("voxserve_requests_total", route=LIVE_PATH, status="101") == 1


def test_parameters_and_resampling_match_http(server: FakeServer) -> None:
    params = {"speed": 1.5, "volume": 0.5, "sample_rate": 16000, "sentence_silence": 0.5}
    audio, events = speak(server, words(TEXT), **params)
    assert events[0]["sample_rate"] == 16000
    assert audio == http_speech(server, TEXT, **params)


def test_a_wav_stream_is_one_file(server: FakeServer) -> None:
    audio, _ = speak(server, words(TEXT), response_format="wav")
    assert audio.count(b"RIFF") == 1
    pcm = http_speech(server, TEXT)
    assert audio.endswith(pcm)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "aac"])
def test_compressed_formats_stream(server: FakeServer, fmt: str) -> None:
    audio, events = speak(server, words(TEXT), response_format=fmt)
    assert events[0]["response_format"] == fmt
    assert len(audio) > 100
    assert events[-1]["type"] == "done"


def test_openai_voice_names_and_input_in_the_start_message(server: FakeServer) -> None:
    with session(server, {"voice": "alloy", "model": "tts-1", "input": "Right away."}) as ws:
        send(ws, "end")
        audio, events = received(ws)
    assert events[0]["voice"] == "fake-voice"
    assert events[1]["text"] == "Right away."
    assert audio == http_speech(server, "Right away.")


def test_flush_speaks_what_is_buffered(server: FakeServer) -> None:
    with session(server, {"voice": "fake-voice"}) as ws:
        ws.recv(timeout=10)  # started
        send(ws, "text", delta="Half a thought")
        send(ws, "flush")
        event = None
        while event is None:
            message = ws.recv(timeout=10)
            if isinstance(message, str):
                event = json.loads(message)
        assert event["type"] == "sentence"
        assert event["text"] == "Half a thought"
        send(ws, "end")
        _, events = received(ws)
        assert events[-1]["sentences"] == 1


def test_a_pause_speaks_what_is_buffered_without_flush() -> None:
    settings = fake_settings(live_idle_seconds=0.2)
    with FakeServer(FakeEngine(), settings) as server, session(server, {}) as ws:
        ws.recv(timeout=10)  # started
        send(ws, "text", delta="Well, let me see")
        message = ws.recv(timeout=10)
        assert isinstance(message, bytes)  # audio before any flush or end
        event = json.loads(ws.recv(timeout=10))
        assert event["text"] == "Well, let me see"


def test_nothing_to_say_is_no_sentence(server: FakeServer) -> None:
    _audio, events = speak(server, ["... ", "!? ", "Then. ", "--"])
    assert [e["text"] for e in events if e["type"] == "sentence"] == ["Then."]


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "code", "param"),
    [
        ({"voice": "nobody"}, "voice_not_found", "voice"),
        ({"voice": {"id": "nobody"}}, "voice_not_found", "voice.id"),
        ({"model": "gpt-9"}, "model_not_found", "model"),
        ({"response_format": "ogg"}, "unsupported_format", "response_format"),
        ({"speed": 0}, "invalid_value", "speed"),
        ({"speed": "fast"}, "invalid_value", "speed"),
        ({"sample_rate": 100}, "invalid_value", "sample_rate"),
        ({"type": "text"}, "invalid_message", "type"),
    ],
)
def test_a_bad_start_is_an_error_then_1008(
    server: FakeServer, start: dict[str, Any], code: str, param: str
) -> None:
    with session(server) as ws:
        send(ws, "start", **start)
        error = expect_error(ws, code, 1008)
    assert error["param"] == param


@pytest.mark.parametrize(
    ("message", "code", "close"),
    [
        ("not json", "invalid_json", 1007),
        ("[1, 2]", "invalid_message", 1008),
        (b"\x00\x01", "invalid_message", 1003),
        (json.dumps({"type": "speak"}), "invalid_message", 1008),
        (json.dumps({"type": "text", "delta": 5}), "invalid_value", 1008),
        (json.dumps({"type": "text", "delta": "x" * 5000}), "input_too_long", 1009),
    ],
)
def test_a_bad_message_is_an_error_then_its_close_code(
    server: FakeServer, message: str | bytes, code: str, close: int
) -> None:
    with session(server, {}) as ws:
        ws.send(message)
        expect_error(ws, code, close)


def test_no_start_message_in_time_is_an_error() -> None:
    with (
        FakeServer(FakeEngine(), fake_settings(body_timeout_seconds=0.2)) as server,
        session(server) as ws,
    ):
        expect_error(ws, "request_timeout", 1008)


def test_a_session_over_its_text_limit_ends_with_1009() -> None:
    with (
        FakeServer(FakeEngine(), fake_settings(live_max_session_chars=100)) as server,
        session(server, {}) as ws,
    ):
        for _ in range(4):
            send(ws, "text", delta="word " * 6)
        error = expect_error(ws, "session_too_large", 1009)
    assert "100" in error["message"]


def test_a_session_over_its_time_limit_ends_with_1008() -> None:
    with (
        FakeServer(FakeEngine(), fake_settings(live_max_session_seconds=0.3)) as server,
        session(server, {}) as ws,
    ):
        expect_error(ws, "session_too_long", 1008)


def test_an_engine_failure_is_an_internal_error_then_1011() -> None:
    engine = FakeEngine(fail_on={"Boom."})
    with FakeServer(engine, fake_settings()) as server, session(server, {}) as ws:
        send(ws, "text", delta="Boom.")
        send(ws, "end")
        expect_error(ws, "engine_error", 1011)


# -- API keys ----------------------------------------------------------------------------------


@pytest.fixture
def keyed() -> Iterator[FakeServer]:
    with FakeServer(FakeEngine(), fake_settings(api_keys="k1,k2")) as running:
        yield running


def test_a_key_in_the_handshake_header(keyed: FakeServer) -> None:
    headers = {"Authorization": "Bearer k2"}
    with session(keyed, {"input": "Hi there."}, additional_headers=headers) as ws:
        send(ws, "end")
        _, events = received(ws)
    assert events[-1]["type"] == "done"


def test_a_wrong_key_in_the_header_is_refused_with_401(keyed: FakeServer) -> None:
    with (
        pytest.raises(InvalidStatus) as refused,
        session(keyed, additional_headers={"X-API-Key": "nope"}),
    ):
        pass
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "invalid_api_key"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Request-ID"]


def test_a_key_in_the_start_message_for_browsers(keyed: FakeServer) -> None:
    with session(keyed, {"api_key": "k1", "input": "Hi there."}) as ws:
        send(ws, "end")
        _, events = received(ws)
    assert events[-1]["type"] == "done"


@pytest.mark.parametrize("key", [None, "nope"])
def test_no_or_a_wrong_key_in_the_start_message_is_an_error(
    keyed: FakeServer, key: str | None
) -> None:
    with session(keyed, {"api_key": key, "input": "Hi there."}) as ws:
        error = expect_error(ws, "invalid_api_key", 1008)
    assert error["type"] == "authentication_error"
    assert "Hi there." not in keyed.engine.inferred()


# -- limits ------------------------------------------------------------------------------------


def test_the_rate_limit_counts_sessions() -> None:
    with FakeServer(FakeEngine(), fake_settings(rate_limit=0.001, rate_burst=1)) as server:
        with session(server, {}):
            pass
        with pytest.raises(InvalidStatus) as refused, session(server):
            pass
    response = refused.value.response
    assert response.status_code == 429
    assert json.loads(response.body)["error"]["code"] == "rate_limit_exceeded"
    assert int(response.headers["Retry-After"]) >= 1


def test_sessions_over_the_limit_are_refused_with_503() -> None:
    with (
        FakeServer(FakeEngine(), fake_settings(live_max_sessions=1)) as server,
        session(server, {}) as first,
    ):
        first.recv(timeout=10)  # started: the session is open
        with pytest.raises(InvalidStatus) as refused, session(server):
            pass
        assert refused.value.response.status_code == 503
        send(first, "end")
        assert received(first)[1][-1]["type"] == "done"


def test_an_overloaded_machine_refuses_the_handshake_and_the_next_sentence(
    server: FakeServer,
) -> None:
    admission = server.app.state.admission
    with session(server, {}) as ws:
        ws.recv(timeout=10)  # started
        backlog = admission.admit([10_000.0], 1)  # an hour of work ahead of anything new
        try:
            with pytest.raises(InvalidStatus) as refused, session(server):
                pass
            assert refused.value.response.status_code == 503
            send(ws, "text", delta="Too much. Now")
            error = expect_error(ws, "overloaded", 1013)
        finally:
            backlog.close()
    assert error["retry_after"] > 0


def test_a_client_that_goes_cancels_its_queued_sentences() -> None:
    engine = FakeEngine(seconds_per_call=0.2)
    text = " ".join(f"Sentence number {i} is spoken here." for i in range(8))
    with FakeServer(engine, fake_settings()) as server:
        with session(server, {"input": text}) as ws:
            send(ws, "end")
            while not isinstance(ws.recv(timeout=20), bytes):
                pass  # until the first audio
        wait_until(
            lambda: server.metric("voxserve_live_sessions_total", outcome="disconnected") == 1,
            timeout=10, what="the session to end",
        )  # fmt: skip
        wait_until(lambda: server.app.state.admission.work == 0, timeout=10, what="the ticket")
        spoken = [t for t in engine.inferred() if t.startswith("Sentence")]
    assert spoken[0] == "Sentence number zero is spoken here."
    assert len(spoken) <= 4  # the first and its read-ahead at most
    assert server.metric("voxserve_requests_abandoned_total", reason="disconnected") == 1
    assert server.app.state.live_sessions == 0


# -- docs/agents.md ----------------------------------------------------------------------------


def test_the_agents_page_client_speaks(
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "agents.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", page, re.S)
    monkeypatch.chdir(tmp_path)
    exec(snippet.replace("ws://127.0.0.1:5002", server.url.replace("http://", "ws://")), {})
    printed = [line.split("s  ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert printed == ["Sure!", "Doctor Lee paid three dollars and fifty cents.", "See you."]
    for sentence in printed:
        assert f"s  {sentence}\n" in page  # the page shows what it prints
    audio = (tmp_path / "reply.wav").read_bytes()
    assert audio[:4] == b"RIFF"
    assert audio.endswith(http_speech(server, "Sure! Dr. Lee paid $3.50. See you."))


# -- the audio, however the text is cut ---------------------------------------------------------


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeServer]:
    with FakeServer(FakeEngine(), fake_settings()) as running:
        yield running


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(0, len(TEXT)), max_size=12))
def test_any_pieces_give_the_http_audio(shared_server: FakeServer, cuts: list[int]) -> None:
    """However the text is cut into deltas (mid-word, mid-number, after "Dr"), the session
    speaks the sentences of one HTTP request, sample for sample."""
    bounds = sorted({0, len(TEXT), *cuts})
    pieces = [TEXT[a:b] for a, b in itertools.pairwise(bounds)]
    audio, _ = speak(shared_server, pieces)
    assert audio == http_speech(shared_server, TEXT)


def test_shutdown_closes_sessions_with_1012() -> None:
    with FakeServer(FakeEngine(), fake_settings()) as server, session(server, {}) as ws:
        ws.recv(timeout=10)  # started
        server.server.should_exit = True
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1012
        wait_until(
            lambda: server.metric("voxserve_live_sessions_total", outcome="disconnected") == 1,
            timeout=10, what="the session to end",
        )  # fmt: skip


def test_a_client_that_stops_reading_is_dropped() -> None:
    engine = FakeEngine(samples_per_char=10_000)  # about 1 MB of PCM per sentence
    text = " ".join(f"Sentence number {i} is spoken here." for i in range(20))
    with (
        FakeServer(engine, fake_settings(send_timeout_seconds=0.5)) as server,
        session(server, {"input": text}, max_queue=1, close_timeout=0.5) as ws,
    ):
        send(ws, "end")  # and never read: the socket's buffers fill up
        wait_until(
            lambda: server.metric("voxserve_requests_abandoned_total", reason="stopped_reading")
            == 1,
            timeout=20, what="the server to drop the client",
        )  # fmt: skip
        wait_until(lambda: server.app.state.live_sessions == 0, timeout=10, what="the session")
    assert len([t for t in engine.inferred() if t.startswith("Sentence")]) < 20


def test_a_message_over_the_size_limit_closes_with_1009(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    with session(server, {}) as ws:
        ws.recv(timeout=10)  # started
        send(ws, "text", delta="x" * MAX_WS_MESSAGE_BYTES)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1009
    wait_until(
        lambda: server.metric("voxserve_live_sessions_total", outcome="disconnected") == 1,
        timeout=10, what="the session to end",
    )  # fmt: skip
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_page_of_another_site_is_refused_while_keys_are_off(server: FakeServer) -> None:
    host = server.url.removeprefix("http://")
    with session(server, {"input": "Hi."}, origin=f"http://{host}") as ws:  # same site
        send(ws, "end")
        assert received(ws)[1][-1]["type"] == "done"
    with pytest.raises(InvalidStatus) as refused, session(server, origin="https://evil.example"):
        pass
    response = refused.value.response
    assert response.status_code == 403
    assert json.loads(response.body)["error"]["code"] == "cross_origin"


def test_a_page_of_another_site_may_use_a_key(keyed: FakeServer) -> None:
    start = {"api_key": "k1", "input": "Hi."}
    with session(keyed, start, origin="https://app.example") as ws:
        send(ws, "end")
        assert received(ws)[1][-1]["type"] == "done"
