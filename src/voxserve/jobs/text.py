"""A job's text: an uploaded file read as text, Markdown made plain, sentences in chunks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.sax.saxutils import escape as xml_escape

from voxserve.errors import InvalidTextFile

#: Content types taken as text (with a check that the bytes are UTF-8 text).
TEXT_TYPES = frozenset({"", "application/octet-stream", "application/x-markdown"})
MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown", "application/x-markdown"})
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown")

_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>\s?", re.MULTILINE)
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3}|`+|~~)(?=\S)(.+?)(?<=\S)\1")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
#: Where a heading starts, while Markdown is made plain (no text holds it: NUL).
_MARKER = "\x00"


def is_markdown(content_type: str, filename: str) -> bool:
    """Whether an upload is Markdown, by its type or its name."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    return kind in MARKDOWN_TYPES or filename.lower().endswith(MARKDOWN_SUFFIXES)


def read_upload(data: bytes, content_type: str, filename: str, *, plain: bool = True) -> str:
    """The text of an uploaded file: plain text or Markdown in UTF-8 (made plain, unless
    ``plain`` is false).

    Raises:
        InvalidTextFile: the file is not text (another type, bytes that are not UTF-8,
            NUL bytes).
    """
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if not (kind.startswith("text/") or kind in TEXT_TYPES):
        raise InvalidTextFile(
            f"The file is {kind}, not text: upload plain text or Markdown (UTF-8).",
            param="file",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidTextFile(
            f"The file is not UTF-8 text (byte {exc.start} is not UTF-8): upload plain text "
            "or Markdown.",
            param="file",
        ) from None
    if "\x00" in text:
        raise InvalidTextFile("The file has NUL bytes: it is not text.", param="file")
    if plain and is_markdown(content_type, filename):
        return plain_markdown(text)
    return text


def plain_markdown(text: str, *, heading_marker: str = "") -> str:
    """Markdown as the text it reads as: headings become sentences of their own, links
    and images their text, and markup characters go. ``heading_marker`` is put before
    each heading (:func:`chapter_document` finds them by it)."""
    text = _FENCE.sub("", text)
    text = _HEADING.sub(lambda m: heading_marker + _sentence(m.group(1)) + "\n", text)
    text = _RULE.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _QUOTE.sub("", text)
    text = _LIST.sub("", text)
    text = _TAG.sub("", text)
    for _ in range(2):  # nested emphasis: **_word_**
        text = _EMPHASIS.sub(r"\2", text)
    return text


def chapter_document(markdown: str) -> tuple[str, list[str]]:
    """Markdown made plain as an SSML document with a ``<mark name="chapter-N"/>`` before
    each heading, and the headings' titles.

    The synthesizer's plan places each mark at the sentence it precedes
    (:attr:`voxserve.plan.Plan.marks`), which is where the chapter starts. The sentences
    are those of the plain text: the SSML holds only that text (escaped) and the marks.
    """
    plain = plain_markdown(markdown.replace(_MARKER, ""), heading_marker=_MARKER)
    pieces = plain.split(_MARKER)
    titles = [piece.split("\n", maxsplit=1)[0].rstrip(". ").strip() for piece in pieces[1:]]
    body = xml_escape(pieces[0]) + "".join(
        f'<mark name="chapter-{n}"/>{xml_escape(piece)}' for n, piece in enumerate(pieces[1:], 1)
    )
    return f"<speak>{body}</speak>", titles


def _sentence(heading: str) -> str:
    """A heading ends a sentence (it is spoken as one), whatever its punctuation."""
    heading = heading.strip()
    return heading if heading.endswith((".", "!", "?", ":")) else f"{heading}."


def chunk_sentences(sentences: Sequence[str], max_chars: int) -> list[range]:
    """Consecutive sentences grouped into chunks of about ``max_chars`` characters.

    Every chunk holds whole sentences (at least one), so chunks join where a single
    synthesis would leave its sentence silence.
    """
    chunks: list[range] = []
    start, size = 0, 0
    for index, sentence in enumerate(sentences):
        if index > start and size + len(sentence) > max_chars:
            chunks.append(range(start, index))
            start, size = index, 0
        size += len(sentence)
    if start < len(sentences):
        chunks.append(range(start, len(sentences)))
    return chunks
