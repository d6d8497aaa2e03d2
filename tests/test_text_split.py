"""Sentence splitting with a hard cap on piece length."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxserve.text.split import sentence_ends, split_sentences

pytestmark = pytest.mark.inprocess


def _visible(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello world. How are you? Fine!", ["Hello world.", "How are you?", "Fine!"]),
        ("Really?! Yes.", ["Really?!", "Yes."]),
        ("lower case. still splits.", ["lower case.", "still splits."]),
        ("Pi is 3.5 today. Next.", ["Pi is 3.5 today.", "Next."]),
        ("See e.g. this one. Next.", ["See e.g. this one.", "Next."]),
        ("The U.S. is big.", ["The U.S. is big."]),
        ("By J. R. R. Tolkien. Next.", ["By J. R. R. Tolkien.", "Next."]),
        ("Ask Dr. Who. Then go.", ["Ask Dr. Who.", "Then go."]),
        ("Wait... what? Ok.", ["Wait... what?", "Ok."]),
        ("He left… Then she came.", ["He left…", "Then she came."]),
        ("Visit example.com/docs.html today. Bye.", ["Visit example.com/docs.html today.", "Bye."]),
        ('He said "Stop." Then ran.', ['He said "Stop."', "Then ran."]),
        ('She asked "Why?" and left.', ['She asked "Why?" and left.']),
        ("It ended (finally.) Good.", ["It ended (finally.)", "Good."]),
        ("First paragraph\nSecond paragraph", ["First paragraph", "Second paragraph"]),
        ("One.\n\nTwo.", ["One.", "Two."]),
        ("你好。我很好！真的吗？", ["你好。", "我很好！", "真的吗？"]),
        ("Hello!", ["Hello!"]),
        ("no end at all", ["no end at all"]),
        ("  ", []),
        ("", []),
        ("...", ["..."]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        # the last clause punctuation before the cap
        ("one two three, four five; six seven", 20, ["one two three,", "four five; six seven"]),
        ("alpha beta: gamma delta epsilon", 20, ["alpha beta:", "gamma delta epsilon"]),
        ("alpha—beta gamma delta epsilon", 12, ["alpha—", "beta gamma", "delta", "epsilon"]),
        # else the last space
        ("one two three four five six", 10, ["one two", "three four", "five six"]),
        # a comma too early in the piece loses to the last space
        ("a, bbbb cccc dddd", 10, ["a, bbbb", "cccc dddd"]),
        # else a hard cut
        ("abcdefghijklmnop", 5, ["abcde", "fghij", "klmno", "p"]),
        # combining marks stay with their letter
        ("abce\u0301fg", 4, ["abc", "e\u0301fg"]),
    ],
)
def test_long_sentences_are_cut(text: str, max_chars: int, expected: list[str]) -> None:
    assert split_sentences(text, max_chars=max_chars) == expected


def test_default_cap_is_400_characters() -> None:
    pieces = split_sentences("word " * 200)
    assert [len(p) for p in pieces] == [399, 399, 199]


@pytest.mark.parametrize("max_chars", [0, -1])
def test_cap_must_be_positive(max_chars: int) -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("text", max_chars=max_chars)


@settings(max_examples=200, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=80))
def test_pieces_are_short_non_empty_and_lose_nothing(text: str, max_chars: int) -> None:
    pieces = split_sentences(text, max_chars=max_chars)
    assert all(0 < len(p) <= max_chars for p in pieces)
    assert all(p == p.strip() for p in pieces)
    assert _visible(" ".join(pieces)) == _visible(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet="abc .,;:!?…—\"')\n", min_size=1, max_size=40),
        min_size=1,
        max_size=10,
    ),
    st.integers(min_value=1, max_value=30),
)
def test_punctuation_heavy_text_is_split_safely(parts: list[str], max_chars: int) -> None:
    text = "".join(parts)
    pieces = split_sentences(text, max_chars=max_chars)
    assert all(0 < len(p) <= max_chars for p in pieces)
    assert _visible(" ".join(pieces)) == _visible(text)


def test_a_lone_lowercase_letter_ends_a_sentence_before_a_capital() -> None:
    """A normalized "7:30 pm." becomes "p m." and must still end its sentence."""
    text = "It starts at seven thirty p m. It was great. J. R. R. Tolkien wrote it."
    assert split_sentences(text) == [
        "It starts at seven thirty p m.",
        "It was great.",
        "J. R. R. Tolkien wrote it.",
    ]


def test_sentence_ends_are_where_split_sentences_cuts() -> None:
    text = "Dr. Smith paid $3.50. Was it far? It was!\nThe end"
    ends = list(sentence_ends(text))
    assert [text[:end] for end in ends] == [
        "Dr. Smith paid $3.50.",
        "Dr. Smith paid $3.50. Was it far?",
        "Dr. Smith paid $3.50. Was it far? It was!",
    ]
    assert list(sentence_ends(text, start=22)) == ends[1:]
