"""English number words: cardinals, ordinals, decimals, years and digit strings."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxserve.text.numbers import (
    MAX_CARDINAL,
    cardinal,
    decimal,
    digits,
    integer_words,
    ordinal,
    year,
)

pytestmark = pytest.mark.inprocess


# Every word a cardinal may use; anything else would be a bug (a digit, a typo).
_VOCABULARY = frozenset(
    {
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "million",
        "billion",
        "trillion",
        "quadrillion",
        "minus",
    }
)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (21, "twenty-one"),
        (99, "ninety-nine"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (110, "one hundred ten"),
        (999, "nine hundred ninety-nine"),
        (1000, "one thousand"),
        (1001, "one thousand one"),
        (1234, "one thousand two hundred thirty-four"),
        (10_000, "ten thousand"),
        (100_000, "one hundred thousand"),
        (1_000_000, "one million"),
        (1_234_567, "one million two hundred thirty-four thousand five hundred sixty-seven"),
        (2_000_000_000, "two billion"),
        (3_000_000_000_005, "three trillion five"),
        (10**15, "one quadrillion"),
        (-5, "minus five"),
        (-1234, "minus one thousand two hundred thirty-four"),
    ],
)
def test_cardinal(n: int, expected: str) -> None:
    assert cardinal(n) == expected


def test_cardinal_beyond_the_largest_scale_reads_digits() -> None:
    assert cardinal(MAX_CARDINAL + 1) == "one" + " zero" * 18
    assert cardinal(-(10**20)) == "minus one" + " zero" * 20


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "zeroth"),
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (4, "fourth"),
        (5, "fifth"),
        (8, "eighth"),
        (9, "ninth"),
        (11, "eleventh"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty-first"),
        (22, "twenty-second"),
        (23, "twenty-third"),
        (99, "ninety-ninth"),
        (100, "one hundredth"),
        (101, "one hundred first"),
        (1000, "one thousandth"),
        (1_000_000, "one millionth"),
    ],
)
def test_ordinal(n: int, expected: str) -> None:
    assert ordinal(n) == expected


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("3.14", "three point one four"),
        ("0.5", "zero point five"),
        (".5", "point five"),
        ("-2.75", "minus two point seven five"),
        ("10.05", "ten point zero five"),
        ("1234.5", "one thousand two hundred thirty-four point five"),
        ("7", "seven"),
        ("7.", "seven"),
    ],
)
def test_decimal(s: str, expected: str) -> None:
    assert decimal(s) == expected


@pytest.mark.parametrize("s", ["", "abc", "1.2.3", "1,5", "."])
def test_decimal_rejects_what_is_not_a_number(s: str) -> None:
    with pytest.raises(ValueError, match="decimal"):
        decimal(s)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1999, "nineteen ninety-nine"),
        (2005, "two thousand five"),
        (2026, "twenty twenty-six"),
        (2010, "twenty ten"),
        (1900, "nineteen hundred"),
        (1905, "nineteen oh five"),
        (1066, "ten sixty-six"),
        (1000, "one thousand"),
        (2000, "two thousand"),
        (1100, "eleven hundred"),
        (2099, "twenty ninety-nine"),
        (800, "eight hundred"),
        (12345, "twelve thousand three hundred forty-five"),
    ],
)
def test_year(n: int, expected: str) -> None:
    assert year(n) == expected


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("555", "five five five"),
        ("0", "zero"),
        ("4567", "four five six seven"),
        ("٣", "three"),
    ],
)
def test_digits(s: str, expected: str) -> None:
    assert digits(s) == expected


@pytest.mark.parametrize("s", ["", "12a", "1.5", "-1"])
def test_digits_rejects_non_digits(s: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        digits(s)


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("42", "forty-two"),
        ("0", "zero"),
        ("007", "zero zero seven"),
        ("1" * 19, " ".join(["one"] * 19)),
    ],
)
def test_integer_words(s: str, expected: str) -> None:
    assert integer_words(s) == expected


def test_integer_words_survives_numbers_past_pythons_int_limit() -> None:
    # int() refuses strings over 4300 digits; the normalizer must still read them.
    assert integer_words("9" * 5000).count("nine") == 5000


@settings(max_examples=200)
@given(st.integers(min_value=-(10**16), max_value=10**16))
def test_cardinal_uses_only_number_words(n: int) -> None:
    words = cardinal(n)
    assert not re.search(r"\d", words)
    assert set(re.split(r"[ -]", words)) <= _VOCABULARY


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=10**16))
def test_cardinal_of_a_negative_is_minus_the_positive(n: int) -> None:
    assert cardinal(-n) == f"minus {cardinal(n)}"


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10**16))
def test_ordinal_changes_only_the_last_word(n: int) -> None:
    words, spoken = cardinal(n), ordinal(n)
    head = words[: max(words.rfind(" "), words.rfind("-")) + 1]
    assert spoken.startswith(head)
    assert spoken.endswith(("first", "second", "third", "th"))
