"""SSML <mark> times in the words JSON (voxserve/captions.py mark_times)."""

from __future__ import annotations

import pytest

from voxserve.captions import mark_times, words_and_marks_json
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
