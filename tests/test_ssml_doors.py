"""SSML over Wyoming and the live WebSocket, on the fake engine through the real server:
the audio is the HTTP route's for the same document (docs/ssml.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from fake_server import FakeServer, fake_settings
from fakes import FakeEngine
from voxserve.server.live import LIVE_PATH
from voxserve.server.wyoming.buffer import SentenceBuffer
from wyoming_client import stream, synthesize

pytestmark = pytest.mark.inprocess

DOC = '<speak>Hello <break time="300ms"/> there. <prosody rate="slow">Slowly now.</prosody></speak>'


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeEngine(), fake_settings(), wyoming=True) as running:
        yield running


def http_pcm(server: FakeServer, text: str, **fields: Any) -> bytes:
    body = {"input": text, "response_format": "pcm", "stream": True, **fields}
    response = httpx.post(server.url + "/v1/audio/speech", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


# -- Wyoming ---------------------------------------------------------------------------------


def test_a_wyoming_synthesize_starting_with_speak_is_ssml(server: FakeServer) -> None:
    reply = asyncio.run(synthesize(server.wyoming_port, DOC))
    assert reply.error is None
    assert reply.pcm == http_pcm(server, DOC)
    assert reply.pcm != http_pcm(server, DOC, input_type="text")  # not read as text


def test_a_streamed_document_is_held_whole_and_spoken_as_sent_whole(server: FakeServer) -> None:
    pieces = [DOC[i : i + 7] for i in range(0, len(DOC), 7)]  # cut inside tags: "<spe"
    reply = asyncio.run(stream(server.wyoming_port, pieces))
    assert reply.error is None
    assert reply.pcm == http_pcm(server, DOC)


def test_a_wyoming_error_in_a_document_names_where(server: FakeServer) -> None:
    reply = asyncio.run(synthesize(server.wyoming_port, "<speak>Hi <break time='x'/></speak>"))
    assert reply.error is not None
    assert "line 1, column 11" in reply.error.text
    assert reply.error.code == "invalid_ssml"


def test_the_buffer_tells_a_document_from_text_by_its_start() -> None:
    buffer = SentenceBuffer(200, max_document=100)
    assert buffer.add("  <sp") == ""
    assert buffer.ssml is None
    assert buffer.add("eak>One. Two. ") == ""  # a document: held whole
    assert buffer.ssml is True
    assert buffer.finish() == "<speak>One. Two."
    text = SentenceBuffer(200)
    assert text.add("<3 you. And more") == "<3 you."
    assert text.ssml is False
    big = SentenceBuffer(200, max_document=20)
    with pytest.raises(Exception, match="limit is 20"):
        big.add("<speak>" + "x" * 30)


# -- the live WebSocket --------------------------------------------------------------------


def run_session(
    server: FakeServer, start: dict[str, Any], messages: list[dict[str, Any]]
) -> tuple[bytes, list[dict[str, Any]], int | None]:
    url = server.url.replace("http://", "ws://") + LIVE_PATH
    audio, events = b"", []
    with connect(url, proxy=None, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "voice": "fake-voice", **start}))
        for message in messages:
            ws.send(json.dumps(message))
        try:
            while True:
                data = ws.recv(timeout=20)
                if isinstance(data, bytes):
                    audio += data
                else:
                    events.append(json.loads(data))
        except ConnectionClosed:
            pass
        return audio, events, _close_code(ws)


def _close_code(ws: ClientConnection) -> int | None:
    return ws.close_code


def test_a_text_message_flagged_ssml_is_one_document_in_order(server: FakeServer) -> None:
    messages = [
        {"type": "text", "delta": "Before it. "},
        {"type": "text", "delta": DOC, "ssml": True},
        {"type": "text", "delta": "After it."},
        {"type": "end"},
    ]
    audio, events, close = run_session(server, {}, messages)
    assert close == 1000, events
    sentences = [e for e in events if e["type"] == "sentence"]
    assert [s["text"] for s in sentences] == [
        "Before it.", "Hello", "there.", "Slowly now.", "After it."
    ]  # fmt: skip
    # The break inside the sentence: its 0.3 s alone between "Hello" and "there."
    hello, there = sentences[1], sentences[2]
    gap = there["offset_seconds"] - hello["offset_seconds"] - hello["duration_seconds"]
    assert gap == pytest.approx(0.3, abs=0.01)
    # The document's audio is the HTTP route's, between the sentence silences.
    start = round(hello["offset_seconds"] * 8000) * 2
    document = http_pcm(server, DOC)
    assert audio[start : start + len(document)] == document


def test_the_start_input_follows_input_type_and_marks_come_with_their_sentence(
    server: FakeServer,
) -> None:
    doc = "<speak>Hi <mark name='m'/>there.<mark name='end'/></speak>"
    _audio, events, close = run_session(server, {"input": doc}, [{"type": "end"}])
    assert close == 1000, events
    (sentence,) = [e for e in events if e["type"] == "sentence"]
    assert sentence["text"] == "Hi there."
    end = sentence["offset_seconds"] + sentence["duration_seconds"]
    assert [m["mark"] for m in sentence["marks"]] == ["m", "end"]
    assert sentence["marks"][1]["time"] == pytest.approx(end, abs=0.001)
    _audio, events, _close = run_session(
        server, {"input": doc, "input_type": "text"}, [{"type": "end"}]
    )
    assert "speak" in " ".join(e.get("text", "") for e in events)


@pytest.mark.parametrize(
    ("message", "code", "param"),
    [({"type": "text", "delta": "<speak>Hi <b>", "ssml": True}, "invalid_ssml", "delta"),
     ({"type": "text", "delta": "Hi", "ssml": "yes"}, "invalid_value", "ssml"),
     ({"type": "text", "delta": "<speak><voice name='nobody'>x</voice></speak>", "ssml": True},
      "invalid_ssml", "input")],
    ids=["not-xml", "not-a-bool", "unknown-voice"],
)  # fmt: skip
def test_a_bad_document_is_an_error_then_1008(
    server: FakeServer, message: dict[str, Any], code: str, param: str
) -> None:
    _audio, events, close = run_session(server, {}, [message, {"type": "end"}])
    assert events[-1]["type"] == "error", events
    assert events[-1]["error"]["code"] == code
    assert events[-1]["error"]["param"] == param
    assert close == 1008
