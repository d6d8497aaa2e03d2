"""``voxserve say``'s reader (cli_say.read_blocks): long text, block by block, in process.

What the command writes is tested end to end, on the real model, in test_cli.py.
"""

from __future__ import annotations

import io

import pytest

from voxserve.cli_say import BLOCK_CHARS, read_blocks
from voxserve.text import split_sentences

pytestmark = pytest.mark.inprocess

PARAGRAPHS = (
    "Chapter one. The lighthouse keeper woke before dawn, as he had every day for "
    "thirty years. He lit the stove, filled the kettle and listened to the sea.",
    "Dr. Smith arrived on the 9:15 ferry with 2 suitcases and a crate of books. "
    "She paid $3.50 for the crossing and asked where the old observatory was.",
    "Nobody answered at first! The harbour was quiet, the gulls were asleep, and "
    "the only sound was the slow creak of ropes against the wooden posts.",
    "Is it far? she asked the boy who mended nets by the slipway. He pointed up the "
    "hill, past the church, and said it was about 3 km along the cliff path.",
)
LONGEST_SENTENCE = max(len(s) for p in PARAGRAPHS for s in split_sentences(p))


def book(paragraphs: int, separator: str = "\n\n") -> str:
    return separator.join(PARAGRAPHS[i % len(PARAGRAPHS)] for i in range(paragraphs)) + "\n"


class CountingReader(io.StringIO):
    """A text file that counts the characters read from it."""

    chars_read = 0

    def read(self, size: int | None = -1) -> str:
        text = super().read(size)
        self.chars_read += len(text)
        return text


def assert_sentence_aligned(blocks: list[str], text: str) -> None:
    """Nothing lost or reordered; every block but the last at least BLOCK_CHARS long,
    no more than a sentence over it, and ending where a sentence ends."""
    assert "".join(blocks) == text
    for block in blocks[:-1]:
        assert BLOCK_CHARS <= len(block) <= BLOCK_CHARS + LONGEST_SENTENCE + 2, len(block)
        assert block.rstrip().endswith((".", "!", "?")), block[-40:]
        assert not block.rstrip().endswith("Dr."), block[-40:]


@pytest.mark.parametrize("separator", ["\n\n", "\n", " "], ids=["paragraphs", "lines", "one-line"])
def test_a_100k_character_book_goes_block_by_block_at_sentence_ends(separator: str) -> None:
    """A book on one line goes block by block too: the progress bar moves, and the
    pipeline never gets the whole book at once."""
    text = book(700, separator)
    assert len(text) > 100_000
    source = CountingReader(text)
    blocks = read_blocks(source)
    first = next(blocks)
    assert source.chars_read <= 3 * BLOCK_CHARS  # lazily: only what the first block needed
    all_blocks = [first, *blocks]
    assert len(all_blocks) > 40
    assert_sentence_aligned(all_blocks, text)


def test_one_enormous_sentence_is_cut_at_a_space_at_four_times_the_size() -> None:
    text = "and then it went on and on without a stop " * 1000
    blocks = list(read_blocks(io.StringIO(text), size=500))
    assert "".join(blocks) == text
    for block in blocks[:-1]:
        assert 1900 < len(block) <= 2000
        assert block.endswith(" ")


def test_text_shorter_than_a_block_is_one_block() -> None:
    assert list(read_blocks(io.StringIO("Hello there. Bye."))) == ["Hello there. Bye."]
    assert list(read_blocks(io.StringIO(""))) == []
