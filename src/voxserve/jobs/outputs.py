"""What a job makes beside its audio: captions from word timings, chapters by heading.

A job asked for either has its chunks timed: each chunk stores beside its PCM a small
JSON (:class:`ChunkTiming`): its length, where each of its sentences starts and, for
captions, each sentence's words, all counted from the chunk's own start. Chunks are
synthesized anywhere and in any order, so only the assembly knows where a chunk starts
in the whole audio: the sum of the lengths before it. :func:`timeline` shifts each
chunk's times by that, which gives the same times as one synthesis of the whole text
(where each sentence is timed from the response's start the same way).

Chapters start at a Markdown heading's sentence (:func:`voxserve.jobs.text.chapter_document`
marks them) and end where the next begins, the last at the end of the audio. They are in
the job's JSON always, and in the file where its container carries them
(:func:`voxserve.audio.carries_chapters`: MP3's ID3 CHAP frames, Ogg's CHAPTERxx comments).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from voxserve.captions import CONTENT_TYPES, render, words_json
from voxserve.types import WordTiming
from voxserve.words import shift

Timestamps = Literal["", "words", "srt", "vtt"]

#: Each kind of timestamps a job can make: its file's suffix and content type.
TIMESTAMP_FILES: dict[str, tuple[str, str]] = {
    "srt": (".srt", CONTENT_TYPES["srt"]),
    "vtt": (".vtt", CONTENT_TYPES["vtt"]),
    "words": (".words.json", "application/json"),
}


@dataclass(frozen=True)
class Chapter:
    """A chapter as the text has it."""

    title: str
    """The heading's text (Markdown made plain)."""
    sentence: int
    """Index of the plan's sentence it starts at."""


@dataclass(frozen=True)
class ChapterTime:
    """A chapter in the audio."""

    title: str
    start: float
    """Seconds from the start of the audio: where its first sentence starts."""
    end: float
    """Seconds: where the next chapter starts, or the end of the audio."""


@dataclass(frozen=True)
class JobOutputs:
    """What a job was asked to make beside its audio."""

    timestamps: Timestamps = ""
    """Captions beside the audio (``srt``, ``vtt``) or the words as JSON (``words``); ``""``:
    none."""
    chapters: tuple[Chapter, ...] = ()
    """The text's chapters (empty: none asked for, or no heading)."""

    @property
    def timed(self) -> bool:
        """Whether chunks must store their timing."""
        return bool(self.timestamps or self.chapters)


@dataclass(frozen=True)
class ChunkTiming:
    """A chunk's times, from its own start, at the engine's sample rate."""

    samples: int
    """Its length in samples, sentence silence included."""
    starts: tuple[int, ...]
    """Where each of its sentences starts, in samples."""
    words: tuple[tuple[WordTiming, ...], ...] = ()
    """Each sentence's words, in seconds (empty when no timestamps were asked for)."""

    def dumps(self) -> bytes:
        return json.dumps(
            {
                "samples": self.samples,
                "starts": self.starts,
                "words": [[[w.word, w.start, w.end] for w in s] for s in self.words],
            }
        ).encode()

    @classmethod
    def loads(cls, data: bytes) -> ChunkTiming:
        body = json.loads(data)
        return cls(
            samples=int(body["samples"]),
            starts=tuple(int(s) for s in body["starts"]),
            words=tuple(
                tuple(WordTiming(str(w), float(a), float(b)) for w, a, b in s)
                for s in body["words"]
            ),
        )


@dataclass(frozen=True)
class Timeline:
    """A whole job's times, from the start of its audio."""

    chapters: tuple[ChapterTime, ...]
    words: tuple[tuple[WordTiming, ...], ...]
    """Each sentence's words (empty when no timestamps were asked for)."""
    seconds: float
    """The audio's length at the engine's rate."""


def timeline(outputs: JobOutputs, timings: Sequence[ChunkTiming], rate: int) -> Timeline:
    """The chunks' times placed one after another: chapters and words of the whole audio."""
    at = 0
    starts: list[float] = []
    words: list[tuple[WordTiming, ...]] = []
    for chunk in timings:
        starts.extend((at + s) / rate for s in chunk.starts)
        words.extend(shift(w, at / rate) for w in chunk.words)
        at += chunk.samples
    seconds = at / rate
    begins = [starts[c.sentence] if c.sentence < len(starts) else seconds for c in outputs.chapters]
    ends = [*begins[1:], seconds][: len(begins)]
    chapters = tuple(
        ChapterTime(c.title, b, max(b, e))
        for c, b, e in zip(outputs.chapters, begins, ends, strict=True)
    )
    return Timeline(chapters, tuple(words), seconds)


def timestamps_file(kind: Timestamps, words: Sequence[Sequence[WordTiming]]) -> bytes:
    """The job's captions (``srt``, ``vtt``) or its words as JSON (``words``)."""
    if kind == "words":
        flat = [w for sentence in words for w in sentence]
        return json.dumps({"words": words_json(flat)}).encode()
    return render(kind, words).encode()


def chapters_json(chapters: Sequence[ChapterTime]) -> list[dict[str, object]]:
    """Chapters as the API writes them, times rounded to the millisecond."""
    return [
        {"title": c.title, "start": round(c.start, 3), "end": round(c.end, 3)} for c in chapters
    ]


def chapters_from_json(items: Sequence[dict[str, object]]) -> tuple[ChapterTime, ...]:
    return tuple(
        ChapterTime(str(c["title"]), float(str(c["start"])), float(str(c["end"]))) for c in items
    )
