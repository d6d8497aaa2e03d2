"""A job's captions and chapters (jobs/outputs.py): the chunks' times placed in the whole
audio, and, on the real voice in a live server, captions equal to one synthesis's and
chapters at the headings, in the job's JSON and in the MP3 itself."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest
import webvtt

from fake_server import wait_until
from live import LiveServer
from voxserve.jobs.outputs import (
    Chapter,
    ChapterTime,
    ChunkTiming,
    JobOutputs,
    timeline,
    timestamps_file,
)
from voxserve.jobs.text import chapter_document, plain_markdown
from voxserve.types import WordTiming

BOOK = """Some words before the first chapter. They have no heading.

# The first chapter

It was a **quiet** morning. The train left at nine, and the station emptied.
Nobody on the platform noticed the letter that fell from the bench.

## A second chapter: the letter

The letter had no stamp. Its envelope said only, open this on Tuesday.
Maria picked it up, and read the address twice before she put it away.

# Three

The end came sooner than anyone thought. Nobody minded.
"""
TITLES = ["The first chapter", "A second chapter: the letter", "Three"]
QUIET = {"noise_scale": "0", "noise_w": "0"}  # the same audio every time


def test_chunk_times_are_shifted_by_the_chunks_before_them() -> None:
    rate = 1000
    first = ChunkTiming(
        1500, (0, 700), ((WordTiming("a", 0.1, 0.4),), (WordTiming("b", 0.8, 1.2),))
    )
    second = ChunkTiming(2000, (0,), ((WordTiming("c", 0.05, 0.5),),))
    outputs = JobOutputs("vtt", (Chapter("One", 0), Chapter("Two", 1), Chapter("End", 3)))
    times = timeline(outputs, [ChunkTiming.loads(first.dumps()), second], rate)
    assert times.seconds == 3.5
    assert times.words[2] == (WordTiming("c", 1.55, 2.0),)
    assert times.chapters == (
        ChapterTime("One", 0.0, 0.7),
        ChapterTime("Two", 0.7, 3.5),
        ChapterTime("End", 3.5, 3.5),  # a heading after the last sentence
    )
    assert timestamps_file("vtt", times.words).startswith(b"WEBVTT\n\n00:00:00.100 --> ")
    no_chapters = timeline(JobOutputs("srt"), [first, second], rate)
    assert no_chapters.chapters == ()
    assert no_chapters.words == times.words


def test_chapter_document_marks_each_heading_and_keeps_the_plain_text() -> None:
    document, titles = chapter_document(BOOK + "\n# Q & A <b>\n")
    assert titles == [*TITLES, "Q & A"]
    assert document.count("<mark name=") == 4
    assert "Q &amp; A" in document
    assert "\x00" not in document


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    env = {"VOXSERVE_WYOMING": "false", "VOXSERVE_JOBS_CHUNK_CHARS": "120"}
    with LiveServer(env) as live:
        yield live


def finished(server: LiveServer, job_id: str) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def done() -> bool:
        state.update(httpx.get(f"{server.url}/v1/audio/jobs/{job_id}", timeout=30).json())
        return state["status"] in ("succeeded", "failed", "cancelled")

    wait_until(done, timeout=300, what=f"job {job_id} to end")
    return state


def cues(text: str) -> list[tuple[float, float, str]]:
    """WebVTT cues with their times to the millisecond (webvtt-py parses the text; its
    ``start_in_seconds`` is whole seconds)."""
    return [
        (seconds(c.start), seconds(c.end), c.text) for c in webvtt.from_buffer(io.StringIO(text))
    ]


def seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


@pytest.mark.slow
def test_captions_equal_one_synthesis_and_chapters_are_in_the_mp3(server: LiveServer) -> None:
    answer = httpx.post(
        server.url + "/v1/audio/jobs",
        files={"file": ("book.md", BOOK.encode(), "text/markdown")},
        data={"voice": "alloy", "response_format": "mp3", "timestamps": "vtt",
              "chapters": "true", **QUIET},
        timeout=30,
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    assert answer.json()["progress"]["chunks_total"] >= 4
    state = finished(server, answer.json()["id"])
    assert state["status"] == "succeeded", state
    result = state["result"]

    # Captions: those of one synthesis of the same text, though made chunk by chunk.
    captions = httpx.get(result["timestamps"]["url"], timeout=30)
    assert captions.status_code == 200
    assert result["timestamps"]["filename"].endswith(".vtt")
    whole = httpx.post(
        server.url + "/v1/audio/speech",
        json={"input": plain_markdown(BOOK), "voice": "alloy", "timestamps": "vtt",
              "noise_scale": 0, "noise_w": 0},
        timeout=60,
    )  # fmt: skip
    assert whole.status_code == 200, whole.text
    job_cues, one_cues = cues(captions.text), cues(whole.text)
    assert [c[2] for c in job_cues] == [c[2] for c in one_cues]
    for (start, end, _), (start1, end1, _) in zip(job_cues, one_cues, strict=True):
        assert start == pytest.approx(start1, abs=0.0015)
        assert end == pytest.approx(end1, abs=0.0015)

    # Chapters: at the headings, in order, the last ending with the audio.
    chapters = result["chapters"]
    assert [c["title"] for c in chapters] == TITLES
    assert chapters[0]["start"] > 1.0  # the words before the first heading
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(chapters))
    assert chapters[-1]["end"] == pytest.approx(result["duration_seconds"], abs=0.05)
    for chapter in chapters:  # each starts as its heading is spoken
        start, _end, text = next(c for c in job_cues if c[0] >= chapter["start"])
        assert text.startswith(chapter["title"].split()[0])
        assert start < chapter["start"] + 0.5

    audio = httpx.get(result["url"], timeout=30).content
    with av.open(io.BytesIO(audio)) as container:
        embedded = container.chapters()
        seconds = float(container.duration or 0) / 1_000_000
    assert [c["metadata"]["title"] for c in embedded] == TITLES
    for inside, listed in zip(embedded, chapters, strict=True):
        assert float(inside["start"] * inside["time_base"]) == pytest.approx(
            listed["start"], abs=0.002
        )
    assert seconds == pytest.approx(result["duration_seconds"], abs=0.1)


@pytest.mark.slow
def test_chapters_need_markdown_and_timestamps_a_known_form(server: LiveServer) -> None:
    url = server.url + "/v1/audio/jobs"
    plain = httpx.post(url, json={"input": "Hello.", "chapters": True}, timeout=30)
    assert plain.status_code == 400
    assert plain.json()["error"]["param"] == "chapters"
    bad = httpx.post(url, json={"input": "Hello.", "timestamps": "ass"}, timeout=30)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "timestamps"
    # JSON Markdown with words: a words file, and chapters in the JSON of a WAV.
    answer = httpx.post(
        url,
        json={"input": "# One\nHello there.\n# Two\nGood bye.", "input_type": "markdown",
              "chapters": True, "timestamps": "words", "response_format": "wav"},
        timeout=30,
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    result = finished(server, answer.json()["id"])["result"]
    assert [c["title"] for c in result["chapters"]] == ["One", "Two"]
    assert result["chapters"][0]["start"] == 0.0
    words = httpx.get(result["timestamps"]["url"], timeout=30).json()["words"]
    assert [w["word"] for w in words] == ["One", "Hello", "there", "Two", "Good", "bye"]
