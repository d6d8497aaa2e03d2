"""Word timestamps over HTTP (``timestamps`` on /v1/audio/speech), on the real voice:
one JSON object with the audio and its words, captions, and words events in SSE."""

from __future__ import annotations

import base64
import io
import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import soundfile
import srt
import webvtt

from live import LiveServer

pytestmark = pytest.mark.slow

TEXT = "Hello there. The meeting starts at nine thirty, in room four."
WORDS = ["Hello", "there", "The", "meeting", "starts", "at", "nine", "thirty", "in", "room", "four"]
QUIET = {"noise_scale": 0, "noise_w": 0}  # the same audio every time


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer({"VOXSERVE_WYOMING": "false"}) as live:
        yield live


def speak(server: LiveServer, **fields: Any) -> httpx.Response:
    body = {"model": "tts-1", "voice": "alloy", "input": TEXT, **QUIET, **fields}
    return httpx.post(server.url + "/v1/audio/speech", json=body, timeout=60)


def test_json_carries_the_audio_and_each_words_times(server: LiveServer) -> None:
    response = speak(server, timestamps="words", response_format="wav")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    samples, rate = soundfile.read(io.BytesIO(base64.b64decode(body["audio"])))
    seconds = len(samples) / rate
    assert body["duration"] == pytest.approx(seconds, abs=0.01)
    words = body["words"]
    assert [w["word"] for w in words] == WORDS
    assert all(0 <= w["start"] < w["end"] <= seconds for w in words)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words))
    # The pause between the sentences falls between "there" and "The".
    assert words[2]["start"] - words[1]["end"] >= 0.2


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_captions_parse_and_fall_inside_the_audio(server: LiveServer, kind: str) -> None:
    seconds = speak(server, timestamps="words").json()["duration"]
    response = speak(server, timestamps=kind)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        "application/x-subrip" if kind == "srt" else "text/vtt"
    )
    if kind == "srt":
        cues = [
            (c.start.total_seconds(), c.end.total_seconds(), c.content)
            for c in srt.parse(response.text)
        ]
    else:
        parsed = webvtt.from_buffer(io.StringIO(response.text))
        cues = [(c.start_in_seconds, c.end_in_seconds, c.text) for c in parsed]
    assert " ".join(text for _s, _e, text in cues).split() == WORDS
    assert all(0 <= start <= end <= seconds + 0.01 for start, end, _t in cues)


def test_sse_sends_each_sentences_words_before_its_audio(server: LiveServer) -> None:
    whole = speak(server, timestamps="words", response_format="wav").json()["words"]
    with httpx.stream(
        "POST", server.url + "/v1/audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": TEXT, **QUIET,
              "timestamps": "words", "stream_format": "sse", "response_format": "pcm"},
        timeout=60,
    ) as response:  # fmt: skip
        events = [
            json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")
        ]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "speech.audio.words"
    assert kinds[-1] == "speech.audio.done"
    assert kinds.count("speech.audio.words") == 2  # one per sentence
    streamed = [w for e in events if e["type"] == "speech.audio.words" for w in e["words"]]
    assert [w["word"] for w in streamed] == WORDS
    for a, b in zip(streamed, whole, strict=True):  # streamed as timed whole
        assert a["start"] == pytest.approx(b["start"], abs=0.002)


def test_a_second_request_is_served_from_the_cache_with_its_words(server: LiveServer) -> None:
    first = speak(server, timestamps="vtt", input="Cached captions, twice.")
    second = speak(server, timestamps="vtt", input="Cached captions, twice.")
    assert second.headers.get("X-Cache") == "hit"
    assert second.text == first.text
    audio = speak(server, input="Cached captions, twice.", stream=False)
    assert audio.headers["content-type"] == "audio/mpeg"  # not the captions' entry


@pytest.mark.parametrize(
    "fields",
    [{"timestamps": "srt", "stream_format": "sse"}, {"timestamps": "words", "voice": "espeak-de"},
     {"timestamps": "letters"}],
    ids=["captions-as-sse", "espeak-voice", "unknown-form"],
)  # fmt: skip
def test_what_cannot_be_timed_is_refused_naming_the_field(
    server: LiveServer, fields: dict[str, str]
) -> None:
    response = speak(server, **fields)
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["param"] == "timestamps"


def test_ssml_marks_stand_in_the_words_at_their_times(server: LiveServer) -> None:
    doc = (
        '<speak>Hello <mark name="m1"/>there. <mark name="m2"/>The meeting starts.'
        '<mark name="end"/></speak>'
    )
    response = speak(server, input=doc, timestamps="words")
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["words"]
    assert [i.get("word", i.get("mark")) for i in items] == [
        "Hello", "m1", "there", "m2", "The", "meeting", "starts", "end",
    ]  # fmt: skip
    marks = {i["mark"]: i["time"] for i in items if "mark" in i}
    words = [i for i in items if "word" in i]
    assert set(items[1]) == {"mark", "time"}
    # A mark is reached where the word after it starts; between sentences, in the pause.
    assert marks["m1"] == words[1]["start"]
    assert words[1]["end"] <= marks["m2"] <= words[2]["start"]
    assert words[-1]["end"] <= marks["end"] <= body["duration"]
    # The same document with other mark names is another cache entry.
    renamed = speak(server, input=doc.replace('"m1"', '"other"'), timestamps="words").json()
    assert "other" in [i.get("mark") for i in renamed["words"]]


def test_ssml_marks_come_in_sse_events_and_as_webvtt_comments(server: LiveServer) -> None:
    doc = (
        '<speak>Hello <mark name="m1"/>there. <mark name="m2"/>The meeting starts.'
        '<mark name="end"/></speak>'
    )
    whole = speak(server, input=doc, timestamps="words", response_format="wav").json()
    marks = {i["mark"]: i["time"] for i in whole["words"] if "mark" in i}
    with httpx.stream(
        "POST", server.url + "/v1/audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": doc, **QUIET,
              "timestamps": "words", "stream_format": "sse", "response_format": "pcm"},
        timeout=60,
    ) as response:  # fmt: skip
        events = [
            json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")
        ]
    items = [i for e in events if e["type"] == "speech.audio.words" for i in e["words"]]
    # The same items in the same order as the whole JSON; the last mark after the audio.
    assert [i.get("word", i.get("mark")) for i in items] == [
        i.get("word", i.get("mark")) for i in whole["words"]
    ]
    streamed = {i["mark"]: i["time"] for i in items if "mark" in i}
    assert streamed == pytest.approx(marks, abs=0.002)
    kinds = [e["type"] for e in events]
    assert kinds[-2] == "speech.audio.words"  # "end": after the last audio, before done
    assert kinds[-3] == "speech.audio.delta"

    vtt = speak(server, input=doc, timestamps="vtt").text
    notes = [line.split() for line in vtt.splitlines() if line.startswith("NOTE mark ")]
    assert [n[2] for n in notes] == ["m1", "m2", "end"]
    parsed = webvtt.from_buffer(io.StringIO(vtt))  # comments do not disturb a parser
    heard = ["Hello", "there", "The", "meeting", "starts"]
    assert " ".join(c.text for c in parsed).split() == heard
    srt_text = speak(server, input=doc, timestamps="srt").text
    assert "m1" not in srt_text  # SubRip has no comment: a mark would be shown
