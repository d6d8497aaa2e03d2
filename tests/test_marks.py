"""SSML <mark> times in the words JSON (voxserve/captions.py mark_times)."""

from __future__ import annotations

import pytest

from voxserve.captions import mark_times, render, words_and_marks_json
from voxserve.text.spoken import Mark
from voxserve.types import WordTiming

pytestmark = pytest.mark.inprocess

SENTENCES = ("One two three.", "Four five.")
WORDS = (
    (WordTiming("One", 0.1, 0.3), WordTiming("two", 0.35, 0.5), WordTiming("three", 0.55, 0.9)),
    (WordTiming("Four", 1.3, 1.5), WordTiming("five", 1.55, 1.8)),
)
STARTS = (0.0, 1.2)


def test_a_mark_is_at_the_start_of_the_word_after_it() -> None:
    marks = (Mark("a", 0, 0), Mark("b", 0, 4), Mark("c", 1, 0), Mark("d", 1, 5))
    times = mark_times(SENTENCES, marks, WORDS, STARTS, 2.0)
    assert times == [("a", 0.1), ("b", 0.35), ("c", 1.3), ("d", 1.55)]


def test_a_mark_after_the_last_word_is_its_end_and_after_the_text_the_audio_end() -> None:
    marks = (Mark("end of one", 0, len(SENTENCES[0])), Mark("end", 2, 0))
    assert mark_times(SENTENCES, marks, WORDS, STARTS, 2.0) == [("end of one", 0.9), ("end", 2.0)]


def test_a_sentence_without_timed_words_gives_its_start() -> None:
    assert mark_times(SENTENCES, (Mark("m", 1, 5),), (WORDS[0], ()), STARTS, 2.0) == [("m", 1.2)]


def test_marks_stand_in_the_word_list_in_time_order() -> None:
    words = [w for sentence in WORDS for w in sentence]
    items = words_and_marks_json(words, [("end", 2.0), ("b", 0.35)])
    assert [i.get("word", i.get("mark")) for i in items] == [
        "One", "b", "two", "three", "Four", "five", "end",
    ]  # fmt: skip
    assert {"mark": "b", "time": 0.35} in items
    assert words_and_marks_json(words, []) == [
        {"word": w.word, "start": w.start, "end": w.end} for w in words
    ]


def test_webvtt_writes_each_mark_as_a_comment_before_its_cue_and_srt_leaves_them_out() -> None:
    marks = [("m1", 0.35), ("end", 2.0), ("start", 0.0)]
    text = render("vtt", WORDS, marks)
    lines = text.splitlines()
    assert lines[:4] == ["WEBVTT", "", "NOTE mark start at 00:00:00.000", ""]
    assert lines[-2:] == ["NOTE mark end at 00:00:02.000", ""]
    # "m1" falls inside the first cue (0.1-0.9): it stands before the next cue.
    assert lines.index("NOTE mark m1 at 00:00:00.350") < lines.index("Four five")
    assert render("srt", WORDS, marks) == render("srt", WORDS)


def test_a_mark_name_cannot_break_the_webvtt_file() -> None:
    text = render("vtt", WORDS, [("a --> b\n\nc", 1.0)])
    assert "NOTE mark a -> b c at 00:00:01.000\n\n" in text
    assert text.count("-->") == 2  # the two cues' own
