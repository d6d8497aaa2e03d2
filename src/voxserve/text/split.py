"""Split normalized text into sentences short enough for one inference each.

Sentences end at . ! ? (and their full-width forms 。！？) followed by a space, and at
paragraph breaks. A period is not an end inside a decimal or URL (no space follows),
after an initial ("J. R. R. Tolkien"), after a lone lowercase letter unless a capital
follows ("seven p m. It was"), after a dotted abbreviation ("e.g.", "U.S.") or a
known title ("Dr."). An ellipsis ends a sentence only when a capital letter follows.
Closing quotes and brackets stay with the sentence they close.

Any sentence longer than ``max_chars`` is cut at the last clause punctuation
(, ; : — and their full-width forms) in the second half of the allowed length, else at
the last space, else hard at ``max_chars``, so no piece is ever longer than the cap.
Only whitespace is lost: joining the pieces with spaces keeps every other character.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

__all__ = ["clause_ends", "sentence_ends", "split_sentences"]

_TERMINATOR = re.compile(r"(?:[。！？]+|[.!?…]+)[\"'”’»)\]}」』]*")
_FULL_WIDTH = frozenset("。！？")
_OPENERS = frozenset("\"'“‘«([{「『")
# Titles and abbreviations that stay inside a sentence when a normalizer left them.
_NO_END_AFTER = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "mt",
        "vs",
        "approx",
        "fig",
        "cf",
        "vol",
        "ca",
        "jr",
        "sr",
        "capt",
        "lt",
        "sgt",
        "gov",
        "rev",
        "ave",
        "blvd",
        "rd",
        "dept",
        "corp",
        "nr",
    }
)
# Letters separated by periods: "e.g", "U.S", "a.m" (the final period is the terminator).
_DOTTED_ABBREVIATION = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
_CLAUSE_END = re.compile(r"[,;:](?=\s)|[—、，；：]")


def _word_before(text: str, end: int) -> str:
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end].lstrip("".join(_OPENERS))


def _next_visible(text: str, pos: int) -> str:
    for ch in text[pos : pos + 8]:
        if not ch.isspace() and ch not in _OPENERS:
            return ch
    return ""


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    run = match[0].rstrip("\"'”’»)]}」』")
    end = match.end()
    if run[0] in _FULL_WIDTH or end == len(text):
        return True
    if not text[end].isspace():
        return False
    if "!" in run or "?" in run:
        # 'He said "Hi!" and left.' goes on after the quote it closed.
        closed_quote = len(run) < len(match[0])
        return not (closed_quote and _next_visible(text, end).islower())
    if run != ".":
        # An ellipsis trails off inside a sentence unless a new one visibly starts.
        return _next_visible(text, end).isupper()
    word = _word_before(text, match.start())
    if len(word) == 1 and word.isalpha():
        # An initial ("J. R. R. Tolkien") is a capital; a lone lowercase letter, such as
        # the "m" of a normalized "p m.", ends a sentence when a new one visibly starts.
        return word.islower() and _next_visible(text, end).isupper()
    return not (word.lower() in _NO_END_AFTER or _DOTTED_ABBREVIATION.fullmatch(word))


def sentence_ends(text: str, start: int = 0) -> Iterator[int]:
    """Offsets in ``text`` just past each sentence end at or after ``start``.

    A sentence end at the very end of ``text`` always counts: when more text may follow,
    trust only the ends at least 16 characters before it.
    """
    for match in _TERMINATOR.finditer(text, start):
        if _is_boundary(text, match):
            yield match.end()


def clause_ends(text: str, start: int = 0) -> Iterator[int]:
    """Offsets in ``text`` just past each clause end (, ; : followed by a space, — and the
    full-width forms) at or after ``start``: where a long sentence is cut."""
    for match in _CLAUSE_END.finditer(text, start):
        yield match.end()


def _sentences(paragraph: str) -> Iterator[str]:
    start = 0
    for match in _TERMINATOR.finditer(paragraph):
        if _is_boundary(paragraph, match):
            yield paragraph[start : match.end()]
            start = match.end()
    yield paragraph[start:]


def _cut_point(text: str, start: int, max_chars: int) -> int:
    """Where to end the piece that begins at ``start``: at most ``max_chars`` later."""
    limit = start + max_chars
    clause_ends = [m.end() for m in _CLAUSE_END.finditer(text, start, limit + 1)]
    clause_ends = [end for end in clause_ends if start + max_chars // 2 <= end <= limit]
    if clause_ends:
        return clause_ends[-1]
    for cut in range(limit, start, -1):
        if text[cut].isspace():
            return cut
    cut = limit
    # Keep a combining mark with the letter it belongs to.
    while cut > start + 1 and unicodedata.category(text[cut]).startswith("M"):
        cut -= 1
    return cut


def _capped(sentence: str, max_chars: int) -> Iterator[str]:
    text = sentence.strip()
    start = 0
    # Walk by index rather than re-slicing the rest, so a long text costs linear time.
    while len(text) - start > max_chars:
        cut = _cut_point(text, start, max_chars)
        yield text[start:cut].rstrip()
        start = cut
        while text[start].isspace():
            start += 1
    if start < len(text):
        yield text[start:]


def split_sentences(text: str, max_chars: int = 400) -> list[str]:
    """Split ``text`` into sentences of at most ``max_chars`` characters each.

    Returns the non-empty pieces in order; see the module docstring for the rules.

    Raises:
        ValueError: ``max_chars`` is less than 1.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    pieces: list[str] = []
    for paragraph in text.splitlines():
        for sentence in _sentences(paragraph):
            pieces.extend(_capped(sentence, max_chars))
    return pieces
