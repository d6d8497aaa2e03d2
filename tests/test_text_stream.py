"""The streaming sentence splitter: text fed in pieces, cut at settled sentence ends, after
a pause, after a hold, or at a size bound. Time is passed in, so nothing sleeps."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxserve.text.split import split_sentences
from voxserve.text.stream import StreamSplitter

pytestmark = pytest.mark.inprocess

IDLE = 1.0
HOLD = 3.0


def splitter(max_chars: int = 400) -> StreamSplitter:
    return StreamSplitter(idle_seconds=IDLE, hold_seconds=HOLD, max_chars=max_chars)


def feed_all(split: StreamSplitter, pieces: list[str], now: float = 0.0) -> list[str]:
    """Feed every piece at the same instant; returns the segments cut."""
    return [segment for piece in pieces for segment in split.feed(piece, now)]


def by_chars(text: str) -> list[str]:
    return list(text)


@pytest.mark.parametrize(
    ("pieces", "cut", "held"),
    [
        # a sentence end counts once a letter follows it
        (["Hello world.", " How"], ["Hello world."], "How"),
        (["Hello world. "], [], "Hello world."),
        (["Hello world."], [], "Hello world."),
        # numbers split across pieces: "3." may become "3.5"
        (["It is 3", ".", "5 meters. Ok"], ["It is 3.5 meters."], "Ok"),
        (["It is 3.", " Then"], ["It is 3."], "Then"),
        # titles and abbreviations split across pieces
        (["Ask Dr", ".", " Smith", " now. Then"], ["Ask Dr. Smith now."], "Then"),
        (["See e.", "g. this one. Next"], ["See e.g. this one."], "Next"),
        (["The U.S", ". is big. And"], ["The U.S. is big."], "And"),
        # an ellipsis goes on unless a capital follows
        (["Wait..", ". what? Ok"], ["Wait... what?"], "Ok"),
        (["Wait", "...", " then she left. Go"], ["Wait... then she left."], "Go"),
        # a closing quote stays with its sentence
        (['He said "Stop', '." Then', " ran"], ['He said "Stop."'], "Then ran"),
        # several sentences in one piece
        (["One. Two! Three? Four"], ["One.", "Two!", "Three?"], "Four"),
        # a line break ends a segment at once
        (["Title\n", "Body"], ["Title"], "Body"),
        # full-width terminators need no space
        (["你好。", "我很好！真"], ["你好。", "我很好！"], "真"),
    ],
)
def test_cuts_at_settled_sentence_ends(pieces: list[str], cut: list[str], held: str) -> None:
    split = splitter()
    assert feed_all(split, pieces) == cut
    assert split.buffered.strip() == held


def test_character_by_character_gives_the_sentences_of_split_sentences() -> None:
    text = (
        "Dr. Smith paid $3.50 at 5 p.m. on Jan. 3. He said: “Fine.” Then… nothing! "
        "Was it e.g. a test? Yes. The end"
    )
    split = splitter()
    segments = feed_all(split, by_chars(text)) + split.flush()
    assert segments == split_sentences(text)


def test_flush_takes_everything_and_leaves_nothing() -> None:
    split = splitter()
    assert split.feed("Half a sent", 0.0) == []
    assert split.flush() == ["Half a sent"]
    assert split.buffered == ""
    assert split.flush() == []
    assert split.deadline() is None


def test_whitespace_alone_is_never_a_segment() -> None:
    split = splitter()
    assert split.feed("   \n  ", 0.0) == []
    assert split.flush() == []
    assert split.deadline() is None


def test_a_pause_flushes_the_buffer_after_the_idle_bound() -> None:
    split = splitter()
    split.feed("Let me think", 10.0)
    assert split.deadline() == 10.0 + IDLE
    assert split.poll(10.0 + IDLE - 0.01) == []
    assert split.poll(10.0 + IDLE) == ["Let me think"]
    assert split.deadline() is None


def test_new_text_restarts_the_idle_bound() -> None:
    split = splitter()
    split.feed("Let", 0.0)
    split.feed(" me", 0.8)
    assert split.poll(1.0) == []
    assert split.deadline() == pytest.approx(1.8)


def test_a_hold_cuts_growing_text_at_its_last_clause_end() -> None:
    split = splitter()
    split.feed("Well, first of all, we", 0.0)
    split.feed(" should", 0.8)
    split.feed(" look", 1.6)
    split.feed(" at", 2.4)
    assert split.deadline() == pytest.approx(HOLD)
    assert split.poll(HOLD - 0.5) == []
    assert split.poll(HOLD) == ["Well, first of all,"]
    assert split.buffered.strip() == "we should look at"


def test_a_hold_without_a_clause_cuts_before_the_last_word() -> None:
    split = splitter()
    split.feed("One two three four", 0.0)
    split.feed(" fiv", 2.5)
    assert split.poll(HOLD) == ["One two three four"]
    assert split.buffered.strip() == "fiv"
    # the remainder arrived at 2.5: its own hold runs from there
    assert split.deadline() == pytest.approx(2.5 + IDLE)


def test_a_hold_keeps_a_single_word_until_the_pause() -> None:
    split = splitter()
    split.feed("Supercalifragi", 0.0)
    for t in (0.9, 1.8, 2.7):
        split.feed("x", t)
    assert split.poll(HOLD) == []  # one word, maybe still growing
    assert split.deadline() == pytest.approx(2.7 + IDLE)
    assert split.poll(2.7 + IDLE) == ["Supercalifragixxx"]


def test_a_hold_with_whole_words_takes_them_all() -> None:
    split = splitter()
    split.feed("one two ", 0.0)
    split.feed("three ", 2.9)
    assert split.poll(HOLD) == ["one two three"]


def test_text_is_never_held_longer_than_the_bounds() -> None:
    """Words arriving steadily with no sentence end: every word is cut within the hold
    bound of its arrival (plus the pace of the stream)."""
    split = splitter()
    arrived: list[tuple[float, str]] = []
    spoken: list[tuple[float, str]] = []
    now = 0.0
    for i in range(60):
        word = f"w{i}" + ("," if i % 7 == 6 else "")
        arrived.append((now, word))
        for segment in split.feed(word + " ", now):
            spoken.append((now, segment))
        now += 0.4
        while (due := split.deadline()) is not None and due <= now:
            spoken.extend((due, s) for s in split.poll(due))
    due = split.deadline()
    assert due is not None
    spoken.extend((due, s) for s in split.poll(due))
    words = [(at, w) for at, segment in spoken for w in segment.split()]
    assert [w for _, w in words] == [w for _, w in arrived]
    waits = [cut - came for (cut, _), (came, _) in zip(words, arrived, strict=True)]
    assert max(waits) <= HOLD + 0.4 + 1e-9


def test_size_bound_cuts_at_a_clause_then_a_space_then_hard() -> None:
    split = splitter(max_chars=20)
    assert split.feed("one two three, four five six seven", 0.0) == ["one two three,"]
    assert split.buffered.strip() == "four five six seven"
    split = splitter(max_chars=20)
    assert split.feed("aaaa bbbb cccc dddd eeee", 0.0) == ["aaaa bbbb cccc dddd"]
    split = splitter(max_chars=20)
    assert split.feed("x" * 45, 0.0) == ["x" * 20, "x" * 20]
    assert split.buffered == "x" * 5


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamSplitter(idle_seconds=0, hold_seconds=1, max_chars=10)
    with pytest.raises(ValueError, match="max_chars"):
        StreamSplitter(idle_seconds=1, hold_seconds=1, max_chars=0)


_WORDS = st.sampled_from(
    ["Hello", "world.", "Dr.", "Smith", "3.5", "e.g.", "U.S.", "ok,", "yes!", "why?", "...",
     "“Quote.”", "a", "I", "\n", "p.m.", "Then", "12", "x"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(words=st.lists(_WORDS, max_size=40), cuts=st.lists(st.integers(0, 400), max_size=15))
def test_pieces_never_change_the_cuts_and_lose_only_whitespace(
    words: list[str], cuts: list[int]
) -> None:
    """However the text is cut into pieces, the segments are those of feeding it whole,
    and joined they keep every visible character."""
    text = " ".join(words)
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    whole = splitter()
    expected = whole.feed(text, 0.0) + whole.flush()
    split = splitter()
    got = feed_all(split, pieces) + split.flush()
    assert got == expected
    assert "".join("".join(got).split()) == "".join(text.split())
