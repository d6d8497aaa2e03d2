"""Make arbitrary user text safe to normalize and phonemize.

`sanitize` keeps the words of every script and the symbols the normalizer speaks, and
removes what a voice cannot say: control and format characters, unassigned and private
code points, the replacement character left by undecodable bytes, emoji and pictographs.
Whitespace collapses to single spaces, except paragraph breaks, which survive as one
"\\n" so the sentence splitter can break there.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["SPOKEN_SYMBOLS", "sanitize"]

SPOKEN_SYMBOLS = frozenset("°©®™№℃℉")
"""Symbols of category So that the normalizer speaks, so they survive the emoji filter."""

_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_ZERO_WIDTH_JOINERS = frozenset("\u200c\u200d")
# A blank line, a form feed or U+2029 separates paragraphs; a lone line break is only a
# wrapped line and becomes a space.
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*|[\f\u2029]\s*")
_LINE_BREAK = re.compile(r"\r\n?|[\v\x85\u2028]")
_SPACES = re.compile(r"[^\S\n]+")
# Runs of spaces are collapsed before these run, so " ?" suffices (and stays linear).
_SPACE_AROUND_BREAK = re.compile(r" ?\n[ \n]*")
# Marks where an emoji stood; \x00 cannot survive the filter, so it is free to use.
_GAP = "\x00"
_GAP_RUN = re.compile(r"[ \x00]*\x00[ \x00]*")
_ENDS_CLAUSE = frozenset(".,;:!?…。，、；：！？)]}\n")
_OPENS_CLAUSE = frozenset("([{\n")


def _is_emoji_part(ch: str) -> bool:
    """True for pieces of emoji sequences that are not themselves category So."""
    code = ord(ch)
    return (
        0xFE00 <= code <= 0xFE0F  # variation selectors (emoji or text presentation)
        or 0xE0100 <= code <= 0xE01EF  # variation selectors supplement
        or 0x1F3FB <= code <= 0x1F3FF  # skin-tone modifiers (category Sk)
        or code == 0x20E3  # combining enclosing keycap
    )


def _keep_joiner(text: str, i: int) -> bool:
    # ZWNJ and ZWJ are spelling inside Persian and Indic words (between letters or
    # after a virama), but only glue between the pictographs of emoji sequences.
    before = text[i - 1] if i else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    return (
        bool(before)
        and bool(after)
        and unicodedata.category(before)[0] in "LM"
        and unicodedata.category(after)[0] in "LM"
    )


def _filter(text: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch == "\n":
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        elif ch == "\ufffd":
            continue
        elif ch in _ZERO_WIDTH_JOINERS:
            if _keep_joiner(text, i):
                out.append(ch)
        elif _is_emoji_part(ch):
            continue
        else:
            category = unicodedata.category(ch)
            if category in _DROPPED_CATEGORIES:
                continue
            if category == "So" and ch not in SPOKEN_SYMBOLS:
                out.append(_GAP)
            else:
                out.append(ch)
    return "".join(out)


def _close_gap(match: re.Match[str]) -> str:
    """Replace the emoji (and spaces) of one gap with a space, or nothing."""
    text, start, end = match.string, match.start(), match.end()
    before = text[start - 1] if start else "\n"
    after = text[end] if end < len(text) else "\n"
    if before in _OPENS_CLAUSE or after in _ENDS_CLAUSE:
        # "great 👍." keeps its period next to the word.
        return ""
    # "hi😀there" still separates the two words.
    return " " if " " in match[0] or (before.isalnum() and after.isalnum()) else ""


def sanitize(text: str) -> str:
    """Clean ``text`` for speech; see the module docstring for what is kept.

    The result is NFC-normalized and stripped, has no run of two spaces, and its only
    control character is "\\n", which marks a paragraph break.
    """
    text = unicodedata.normalize("NFC", text)
    text = _LINE_BREAK.sub("\n", text)
    text = _PARAGRAPH_BREAK.sub("\u2029", text)
    text = text.replace("\n", " ").replace("\u2029", "\n")
    text = _SPACES.sub(" ", _filter(text))
    text = _GAP_RUN.sub(_close_gap, text)
    text = _SPACE_AROUND_BREAK.sub("\n", text)
    return text.strip()
