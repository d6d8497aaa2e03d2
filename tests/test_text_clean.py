"""Sanitizing user text before normalization."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxserve.text.clean import sanitize

pytestmark = pytest.mark.inprocess


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # whitespace
        ("  hello   world  ", "hello world"),
        ("tab\tseparated", "tab separated"),
        ("wrapped\nline", "wrapped line"),
        ("windows\r\nline", "windows line"),
        ("old mac\rline", "old mac line"),
        ("non\u00a0breaking\u2003space", "non breaking space"),
        # paragraph breaks survive as one "\n"
        ("para one\n\npara two", "para one\npara two"),
        ("para one\r\n\r\n\r\npara two", "para one\npara two"),
        ("para one  \n \t\n  para two", "para one\npara two"),
        ("page\fbreak", "page\nbreak"),
        ("para\u2029sep", "para\nsep"),
        ("\n\nleading and trailing\n\n", "leading and trailing"),
        # control and format characters, unassigned and private code points
        ("bell\x07 and null\x00", "bell and null"),
        ("c1\x85next", "c1 next"),
        ("c1\x9bcontrol", "c1control"),
        ("zero\u200bwidth", "zerowidth"),
        ("soft\u00adhyphen", "softhyphen"),
        ("\ufeffbom", "bom"),
        ("\u202eright-to-left override", "right-to-left override"),
        ("private\ue000use", "privateuse"),
        ("unassigned\U000e0fff", "unassigned"),
        # undecodable bytes
        (b"caf\xe9 ok".decode("utf-8", errors="replace"), "caf ok"),
        # emoji and pictographs
        ("I ❤️ you", "I you"),
        ("thumbs 👍🏽 up", "thumbs up"),
        ("family 👨\u200d👩\u200d👧 trip", "family trip"),
        ("flag 🇺🇸 here", "flag here"),
        ("hi😀there", "hi there"),
        ("done✅.", "done."),
        ("1️⃣ one", "1 one"),
        ("star ★ rating", "star rating"),
        # symbols the normalizer speaks
        ("25°C © ® ™ № ℃", "25°C © ® ™ № ℃"),
        ("$5 €6 £7 ¢ % & + = @ #", "$5 €6 £7 ¢ % & + = @ #"),
        # every script passes through untouched
        ("Привет мир, 你好, مرحبا, שלום, नमस्ते", "Привет мир, 你好, مرحبا, שלום, नमस्ते"),
        ("می\u200cخواهم", "می\u200cخواهم"),
        ("ക്\u200d", "ക്"),
        # NFC
        ("cafe\u0301", "café"),
        ("", ""),
        (" \t\n ", ""),
    ],
)
def test_sanitize(text: str, expected: str) -> None:
    assert sanitize(text) == expected


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_only_newline_survives_as_a_control_character(text: str) -> None:
    cleaned = sanitize(text)
    assert all(ch == "\n" or unicodedata.category(ch) != "Cc" for ch in cleaned)
    assert "\ufffd" not in cleaned
    assert not any(unicodedata.category(ch) in {"Cs", "Co", "Cn"} for ch in cleaned)
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    assert "\n\n" not in cleaned
    assert unicodedata.is_normalized("NFC", cleaned)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")))
def test_sanitizing_a_single_line_twice_changes_nothing(text: str) -> None:
    once = sanitize(text)
    assert sanitize(once) == once
