"""English number words, with no dependency.

Every function returns lower-case words with American conventions: no "and" inside
numbers ("one hundred twenty-three") and hyphens in compound tens ("twenty-one").
"""

from __future__ import annotations

import re

__all__ = ["MAX_CARDINAL", "cardinal", "decimal", "digits", "integer_words", "ordinal", "year"]

MAX_CARDINAL = 10**18 - 1
"""Largest magnitude `cardinal` reads as a number; beyond it the digits are read one by one."""

_ONES = (
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
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = (
    (10**15, "quadrillion"),
    (10**12, "trillion"),
    (10**9, "billion"),
    (10**6, "million"),
    (10**3, "thousand"),
)
_IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_DECIMAL = re.compile(r"([-−+]?)(\d*)\.(\d+)|([-−+]?)(\d+)\.?")


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(f"{_TENS[tens]}-{_ONES[ones]}" if ones else _TENS[tens])
    elif rest:
        words.append(_ONES[rest])
    return " ".join(words)


def cardinal(n: int) -> str:
    """Read an integer: ``cardinal(-1234)`` is "minus one thousand two hundred thirty-four".

    Magnitudes above `MAX_CARDINAL` are read digit by digit, so any int gets an answer.
    """
    if n < 0:
        return f"minus {cardinal(-n)}"
    if n < 20:
        return _ONES[n]
    if n > MAX_CARDINAL:
        return digits(str(n))
    words = []
    for scale, name in _SCALES:
        count, n = divmod(n, scale)
        if count:
            words.append(f"{_below_thousand(count)} {name}")
    if n:
        words.append(_below_thousand(n))
    return " ".join(words)


def ordinal(n: int) -> str:
    """Read an integer as an ordinal: ``ordinal(21)`` is "twenty-first"."""
    words = cardinal(n)
    # Only the last word changes: "one hundred twenty-one" -> "one hundred twenty-first".
    cut = max(words.rfind(" "), words.rfind("-")) + 1
    head, last = words[:cut], words[cut:]
    if last in _IRREGULAR_ORDINALS:
        return head + _IRREGULAR_ORDINALS[last]
    if last.endswith("y"):
        return f"{head}{last[:-1]}ieth"
    return f"{head}{last}th"


def digits(s: str) -> str:
    """Read every digit of ``s`` on its own: "555" is "five five five".

    Raises:
        ValueError: ``s`` is empty or holds something other than decimal digits.
    """
    if not s or not s.isdecimal():
        raise ValueError(f"digits() needs a non-empty string of decimal digits, got {s!r}")
    return " ".join(_ONES[int(ch)] for ch in s)


def decimal(s: str) -> str:
    """Read a written decimal: "3.14" is "three point one four", "-0.5" "minus zero point five".

    The integer part is read as a cardinal and the fraction digit by digit; a leading
    "." reads as "point five". Thousands separators are not accepted here.

    Raises:
        ValueError: ``s`` is not an optionally signed decimal number.
    """
    match = _DECIMAL.fullmatch(s.strip())
    if match is None:
        raise ValueError(f"decimal() needs a number like '3.14', got {s!r}")
    sign, whole, fraction, int_sign, int_only = match.groups()
    if int_only is not None:
        return _signed(int_sign, _integer_words(int_only))
    spoken = f"point {digits(fraction)}"
    if whole:
        spoken = f"{_integer_words(whole)} {spoken}"
    return _signed(sign, spoken)


def year(n: int) -> str:
    """Read an integer the way years are said.

    "1999" is "nineteen ninety-nine", "1905" "nineteen oh five", "1900" "nineteen
    hundred", "2005" "two thousand five", "2026" "twenty twenty-six". Numbers outside
    1000-9999 are read as cardinals.
    """
    if not 1000 <= n <= 9999:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        # 2000 is "two thousand", never "twenty hundred".
        return cardinal(n) if high % 10 == 0 else f"{cardinal(high)} hundred"
    if n % 1000 < 10:
        return cardinal(n)
    if low < 10:
        return f"{cardinal(high)} oh {_ONES[low]}"
    return f"{cardinal(high)} {cardinal(low)}"


def _integer_words(s: str) -> str:
    """Read a string of digits, which may be too long for `int`, without raising."""
    if len(s) > 1 and s.startswith("0"):
        # "007" and "0123" are codes, not quantities.
        return digits(s)
    if len(s) > len(str(MAX_CARDINAL)):
        return digits(s)
    return cardinal(int(s))


def _signed(sign: str, words: str) -> str:
    return f"minus {words}" if sign in ("-", "−") else words


def integer_words(s: str) -> str:
    """Read a string of ASCII digits of any length: as a cardinal, or digit by digit.

    Leading zeros ("007") and numbers longer than `MAX_CARDINAL` are read digit by
    digit; Python's limit on converting long digit strings to int is never hit.

    Raises:
        ValueError: ``s`` is empty or holds something other than decimal digits.
    """
    if not s or not s.isdecimal():
        raise ValueError(f"integer_words() needs a string of decimal digits, got {s!r}")
    return _integer_words(s)
