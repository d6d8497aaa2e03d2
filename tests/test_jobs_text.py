"""voxserve.jobs.text: uploads read as text, Markdown made plain, sentences in chunks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxserve.errors import InvalidTextFile
from voxserve.jobs.text import chunk_sentences, plain_markdown, read_upload

pytestmark = pytest.mark.inprocess


@given(st.lists(st.text(min_size=1, max_size=50), max_size=60), st.integers(1, 200))
def test_chunks_cover_every_sentence_once_in_order(sentences: list[str], size: int) -> None:
    chunks = chunk_sentences(sentences, size)
    assert [i for chunk in chunks for i in chunk] == list(range(len(sentences)))
    for chunk in chunks:
        assert len(chunk) == 1 or sum(len(sentences[i]) for i in chunk) <= size


def test_markdown_reads_as_text() -> None:
    text = plain_markdown(
        "# Title\n\nSome **bold** and _it_ with [a link](http://x).\n\n- item one\n> quoted\n"
        "```\ncode fence\n```\n![alt text](p.png)\n"
    )
    assert "Title." in text
    assert "Some bold and it with a link." in text
    assert "item one" in text
    assert "quoted" in text
    for markup in ("#", "**", "](", "```", "> ", "- "):
        assert markup not in text


def test_uploads_must_be_utf8_text() -> None:
    assert read_upload("\ufeffHé.".encode(), "text/plain", "a.txt") == "Hé."
    assert read_upload(b"# H", "application/octet-stream", "a.md") == "H.\n"
    for data, kind in ((b"\x89PNG", "image/png"), (b"\xff\xfe", "text/plain"), (b"a\x00", "")):
        with pytest.raises(InvalidTextFile):
            read_upload(data, kind, "f")
