"""Captions of synthesized speech from its word timings: SubRip (``srt``) and WebVTT.

A cue never spans two sentences and holds at most :data:`CUE_CHARS` characters of text
(about one subtitle line), from its first word's start to its last word's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from voxserve.text.spoken import Mark
from voxserve.types import WordTiming
from voxserve.words import written_words

#: Most characters of text in one cue (a subtitle line, as broadcasters keep it).
CUE_CHARS = 42

CONTENT_TYPES: Final[dict[str, str]] = {
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
"""Each caption format and its content type."""


@dataclass(frozen=True)
class Cue:
    """One caption."""

    start: float
    """Seconds from the start of the audio."""
    end: float
    """Seconds from the start of the audio."""
    text: str
    """Its words."""


def cues(sentences: Sequence[Sequence[WordTiming]]) -> list[Cue]:
    """The cues of each sentence's timed words, in order."""
    out: list[Cue] = []
    for words in sentences:
        line: list[WordTiming] = []
        for word in words:
            text = " ".join(w.word for w in [*line, word])
            if line and len(text) > CUE_CHARS:
                out.append(_cue(line))
                line = []
            line.append(word)
        if line:
            out.append(_cue(line))
    return out


def _cue(words: list[WordTiming]) -> Cue:
    return Cue(words[0].start, max(words[-1].end, words[0].start), " ".join(w.word for w in words))


def timestamp(seconds: float, *, decimal: str = ".") -> str:
    """``HH:MM:SS.mmm`` (``decimal=","`` for SubRip)."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def srt(captions: Sequence[Cue]) -> str:
    """SubRip: numbered cues, ``00:00:01,500`` times."""
    return "".join(
        f"{n}\n{timestamp(c.start, decimal=',')} --> {timestamp(c.end, decimal=',')}\n{c.text}\n\n"
        for n, c in enumerate(captions, start=1)
    )


def vtt(captions: Sequence[Cue], marks: Sequence[tuple[str, float]] = ()) -> str:
    """WebVTT: its header, then ``00:00:01.500`` times. Each SSML mark is a comment,
    ``NOTE mark NAME at 00:00:01.234``, before the first cue that starts at or after it:
    players show no comment, and a mark is no text to show (docs/captions.md)."""
    pending = sorted(marks, key=lambda m: m[1])
    blocks = ["WEBVTT\n\n"]
    for cue in captions:
        while pending and pending[0][1] <= cue.start:
            blocks.append(_note(*pending.pop(0)))
        blocks.append(f"{timestamp(cue.start)} --> {timestamp(cue.end)}\n{cue.text}\n\n")
    blocks.extend(_note(*mark) for mark in pending)
    return "".join(blocks)


def _note(name: str, time: float) -> str:
    # A comment may hold neither "-->" nor a blank line; a mark's name is one line.
    safe = " ".join(name.replace("-->", "->").split())
    return f"NOTE mark {safe} at {timestamp(time)}\n\n"


def render(
    kind: str,
    sentences: Sequence[Sequence[WordTiming]],
    marks: Sequence[tuple[str, float]] = (),
) -> str:
    """Captions in ``kind`` (``srt`` or ``vtt``) of each sentence's timed words; ``marks``
    (name, seconds) as WebVTT comments. SubRip has no comment, and a cue would put a
    mark's name on screen: an ``srt`` leaves them out."""
    if kind not in CONTENT_TYPES:
        raise ValueError(f"captions are srt or vtt, not {kind!r}")
    return srt(cues(sentences)) if kind == "srt" else vtt(cues(sentences), marks)


def words_json(words: Sequence[WordTiming]) -> list[dict[str, object]]:
    """Words as the HTTP API writes them: ``{"word", "start", "end"}``, times in seconds
    rounded to the millisecond."""
    return [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)} for w in words]


def mark_time(sentence: str, mark: Mark, words: Sequence[WordTiming], start: float) -> float:
    """When ``mark`` is reached in ``sentence`` (its own): the start of the word after it;
    at the sentence's end, the end of its last word. ``words``: the sentence's timed words;
    ``start``: when its audio starts (the time where it has none)."""
    before = len(written_words(sentence[: mark.offset]))
    if before < len(words):
        return words[before].start
    return words[-1].end if words else start


def mark_times(
    sentences: Sequence[str],
    marks: Sequence[Mark],
    words: Sequence[Sequence[WordTiming]],
    starts: Sequence[float],
    duration: float,
) -> list[tuple[str, float]]:
    """When each SSML ``<mark>`` is reached: ``(name, seconds)``.

    A mark stands before the word that follows it, so its time is that word's start; at
    the end of a sentence, the end of its last word; after the last sentence, the end of
    the audio. ``words[i]`` and ``starts[i]`` are sentence ``i``'s timed words and the
    time its audio starts (used when it has no timed words).
    """
    times = []
    for mark in marks:
        if mark.sentence >= len(sentences):
            times.append((mark.name, duration))
        else:
            i = mark.sentence
            times.append((mark.name, mark_time(sentences[i], mark, words[i], starts[i])))
    return times


def words_and_marks_json(
    words: Sequence[WordTiming], marks: Sequence[tuple[str, float]]
) -> list[dict[str, object]]:
    """Words as :func:`words_json` writes them, with each mark as ``{"mark", "time"}``
    before the first word that starts at or after it (docs/captions.md)."""
    items = words_json(words)
    placed: list[dict[str, object]] = []
    pending = sorted(marks, key=lambda m: m[1])
    for word, item in zip(words, items, strict=True):
        while pending and pending[0][1] <= word.start:
            name, time = pending.pop(0)
            placed.append({"mark": name, "time": round(time, 3)})
        placed.append(item)
    placed.extend({"mark": name, "time": round(time, 3)} for name, time in pending)
    return placed
