"""Rules of the English normalizer that read structured numbers.

Each rule is a compiled pattern and a function from its match to the spoken words;
`voxserve.text.en` applies them in order. This module holds the rules for web
addresses, phone numbers, dates, times, money, percentages and units, and the tables
they read from. The functions assume the text's digits are ASCII (`normalize_en`
folds other decimal digits first).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from voxserve.text.numbers import cardinal, decimal, digits, integer_words, ordinal, year

__all__ = [
    "DATE_AND_TIME_RULES",
    "MONTHS",
    "NUMBER",
    "PHONE_AND_DATE_RULES",
    "QUANTITY_RULES",
    "WEB_RULES",
    "Rule",
    "ends_sentence",
    "read_number",
    "spell_web",
]

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
"""A pattern and the function that turns one of its matches into words."""

NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?![.,]?\d)"
"""A written number: "7", "3.14", ".5", "1,234,567.89"; never a piece of a longer one."""

_START = r"(?<![\w.,])"
_SIGNED = rf"(?:{_START}(?P<sign>[-−]))?{_START}(?P<num>{NUMBER})"

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_ABBREVIATIONS = {m[:3]: m for m in MONTHS if m != "May"} | {"Sept": "September"}
_MONTH_BY_NAME = {m: m for m in MONTHS} | _MONTH_ABBREVIATIONS
_MONTH = "(?P<month>{})".format(
    "|".join([*MONTHS, *(rf"{a}\.?" for a in sorted(_MONTH_ABBREVIATIONS, key=len, reverse=True))])
)

# Currency symbol -> (one, many, one hundredth, many hundredths).
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
}
_MAGNITUDES = {
    "thousand": "thousand",
    "million": "million",
    "billion": "billion",
    "trillion": "trillion",
    "k": "thousand",
    "K": "thousand",
    "m": "million",
    "M": "million",
    "bn": "billion",
    "B": "billion",
    "tn": "trillion",
}

# Unit as written -> (singular, plural).
_UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "m/s": ("meter per second", "meters per second"),
    "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lbs": ("pound", "pounds"),
    "lb": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "° C": ("degree Celsius", "degrees Celsius"),
    "℃": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "° F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "℉": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "ms": ("millisecond", "milliseconds"),
    "sec": ("second", "seconds"),
    "s": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "hrs": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "h": ("hour", "hours"),
    "TB": ("terabyte", "terabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"),
    "kB": ("kilobyte", "kilobytes"),
    "KB": ("kilobyte", "kilobytes"),
    "GHz": ("gigahertz", "gigahertz"),
    "MHz": ("megahertz", "megahertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz"),
    "mL": ("milliliter", "milliliters"),
    "ml": ("milliliter", "milliliters"),
    "L": ("liter", "liters"),
}
_UNIT = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))

_WEB_SYMBOLS = {
    ".": "dot",
    "/": "slash",
    "-": "dash",
    "_": "underscore",
    ":": "colon",
    "?": "question mark",
    "=": "equals",
    "&": "and",
    "#": "hash",
    "@": "at",
    "~": "tilde",
    "%": "percent",
    "+": "plus",
}
_WEB_TOKEN = re.compile(r"\d+|[^\W\d_]+|.", re.DOTALL)
_TRAILING_PUNCTUATION = ".,;:!?'\")]"
_SENTENCE_FOLLOWS = re.compile(r"\s*$|\s*\n|\s+[\"'“‘(\[]?[A-Z]")


def read_number(num: str) -> str:
    """Read a written number: integer, decimal, with or without thousands separators."""
    num = num.replace(",", "")
    if "." in num:
        return decimal(num)
    return integer_words(num)


def _signed(sign: str | None, words: str) -> str:
    return f"minus {words}" if sign else words


def ends_sentence(text: str, pos: int) -> bool:
    """Whether a period just before ``pos`` looks like the end of a sentence."""
    return _SENTENCE_FOLLOWS.match(text, pos) is not None


def spell_web(address: str) -> str:
    """Read an e-mail address or URL the way people say it: "example dot com slash docs"."""
    words = []
    for token in _WEB_TOKEN.findall(address):
        if token.isdecimal():
            words.append(digits(token))
        elif token.lower() == "www":
            words.append("w w w")
        elif token[0].isalpha():
            words.append(token)
        elif token in _WEB_SYMBOLS:
            words.append(_WEB_SYMBOLS[token])
    return " ".join(words)


def _web(match: re.Match[str]) -> str:
    # A URL ending a sentence or a parenthesis leaves that punctuation to the text.
    address = match[0].rstrip(_TRAILING_PUNCTUATION)
    tail = match[0][len(address) :]
    address = re.sub(r"^[a-z]+://", "", address, flags=re.IGNORECASE)
    return spell_web(address.rstrip("/")) + tail


def _email(match: re.Match[str]) -> str:
    return f"{spell_web(match['user'])} at {spell_web(match['domain'])}"


def _phone(match: re.Match[str]) -> str:
    groups = re.findall(r"\d+", match[0])
    if sum(len(g) for g in groups) < 7:
        # "+5 10 20" is arithmetic, not a phone number.
        return match[0]
    spoken = ", ".join(digits(g) for g in groups)
    return f"plus {spoken}" if match[0].startswith("+") else spoken


def _local_phone(match: re.Match[str]) -> str:
    if match[0].endswith("00") and match[0][4] != "0":
        return match[0]  # "300-1000": a range
    return _phone(match)


def _iso_date(match: re.Match[str]) -> str:
    month, day = int(match["m"]), int(match["d"])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match[0]
    return f"{MONTHS[month - 1]} {ordinal(day)}, {year(int(match['y']))}"


def _month(match: re.Match[str]) -> str:
    return _MONTH_BY_NAME[match["month"].rstrip(".")]


def _month_day(match: re.Match[str]) -> str:
    day = int(match["day"])
    if not 1 <= day <= 31:
        return match[0]
    spoken = f"{_month(match)} {ordinal(day)}"
    return f"{spoken}, {year(int(match['year']))}" if match["year"] else spoken


def _day_month(match: re.Match[str]) -> str:
    day = int(match["day"])
    if not 1 <= day <= 31:
        return match[0]
    spoken = f"the {ordinal(day)} of {_month(match)}"
    if match["year"]:
        return f"{spoken} {year(int(match['year']))}"
    # An abbreviated month swallowed its period; give it back if it ended the sentence.
    if match["month"].endswith(".") and ends_sentence(match.string, match.end()):
        return spoken + "."
    return spoken


def _month_year(match: re.Match[str]) -> str:
    return f"{_month(match)} {year(int(match['year']))}"


def _meridiem(match: re.Match[str]) -> str:
    if not match["ampm"]:
        return ""
    # By their letters' names (en_codes.LETTER_NAMES): espeak says "a m" as the article,
    # and "AM" as "uh-em", which Whisper heard as "fifty NAM" after "seven fifteen".
    spoken = " eh-em" if match["ampm"][0] in "aA" else " pee-em"
    if match["ampm"].endswith(".") and ends_sentence(match.string, match.end()):
        spoken += "."
    return spoken


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match["h"]), int(match["min"])
    limit = 12 if match["ampm"] else 24
    if hour > limit or minute > 59 or (match["s"] and int(match["s"]) > 59):
        return match[0]
    if minute == 0:
        if match["ampm"]:
            spoken = cardinal(hour)
        elif 1 <= hour <= 12:
            spoken = f"{cardinal(hour)} o'clock"
        else:
            # Military style: 15:00 is "fifteen hundred".
            spoken = f"{cardinal(hour)} hundred"
    elif minute < 10:
        spoken = f"{cardinal(hour)} oh {cardinal(minute)}"
    else:
        spoken = f"{cardinal(hour)} {cardinal(minute)}"
    if match["s"]:
        seconds = int(match["s"])
        spoken += f" and {cardinal(seconds)} second{'' if seconds == 1 else 's'}"
    return spoken + _meridiem(match)


def _hour(match: re.Match[str]) -> str:
    if not 1 <= int(match["h"]) <= 12:
        return match[0]
    return cardinal(int(match["h"])) + _meridiem(match)


def _money(match: re.Match[str]) -> str:
    one, many, cent, cents = _CURRENCIES[match["cur"]]
    num = match["num"].replace(",", "")
    magnitude = match.groupdict().get("mag")
    if magnitude:
        words = f"{read_number(num)} {_MAGNITUDES[magnitude.strip()]} {many}"
        return _signed(match["sign"], words)
    whole, _, fraction = num.partition(".")
    if len(fraction) > 2:
        return _signed(match["sign"], f"{read_number(num)} {many}")
    amount = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    # "$0.99" is "ninety-nine cents", but "$0" still says "zero dollars".
    if whole and (whole.strip("0") or not amount):
        parts.append(f"{integer_words(whole)} {one if whole == '1' else many}")
    if amount:
        parts.append(f"{integer_words(str(amount))} {cent if amount == 1 else cents}")
    return _signed(match["sign"], " and ".join(parts) if parts else f"zero {many}")


def _cents(match: re.Match[str]) -> str:
    name = "cent" if match["num"] == "1" else "cents"
    return _signed(match["sign"], f"{read_number(match['num'])} {name}")


def _percent(match: re.Match[str]) -> str:
    name = "percent" if match["pct"] == "%" else "per mille"
    return _signed(match["sign"], f"{read_number(match['num'])} {name}")


def _unit(match: re.Match[str]) -> str:
    singular, plural = _UNITS[match["unit"]]
    name = singular if match["num"] == "1" else plural
    return _signed(match["sign"], f"{read_number(match['num'])} {name}")


_AMPM = r"(?:[ ]?(?P<ampm>[AaPp]\.?[Mm]\b\.?))"
_MAGNITUDE = r"(?P<mag>[ ](?:thousand|million|billion|trillion)|k|K|m|M|bn|B|tn)(?![\w])"

WEB_RULES: tuple[Rule, ...] = (
    (
        re.compile(
            r"(?<![\w.%+-])(?P<user>[A-Za-z0-9][A-Za-z0-9._%+-]*)"
            r"@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b"
        ),
        _email,
    ),
    (re.compile(r"\b(?:(?i:https?|ftp)://|www\.)[^\s<>\"]+"), _web),
    (
        re.compile(
            r"(?<![\w.@/-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
            r"(?i:com|org|net|edu|gov|io|dev|ai|app|co|uk|de|fr|eu|info|biz|tv|ca|au)\b"
            r"(?:/[^\s<>\"]*)?"
        ),
        _web,
    ),
)
"""E-mail addresses and URLs, read before anything else can touch their dots and digits."""

PHONE_AND_DATE_RULES: tuple[Rule, ...] = (
    (
        re.compile(
            r"(?<![\w+])(?:(?:\+\d{1,3}|1)[ .-]?)?"
            r"(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"
        ),
        _phone,
    ),
    (re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]\d{1,4}){2,5}(?![\w-])"), _phone),
    # A local number, "555-0142": three digits (an exchange starts with 2-9), a hyphen,
    # four. A range after "from" or "between", or to a round number ("300-1000").
    (
        re.compile(
            r"(?<![\w+.,$€£-])(?<!(?i:from) )(?<!(?i:between) )[2-9]\d{2}-\d{4}(?![\w-]|[.,]\d)"
        ),
        _local_phone,
    ),
    (re.compile(r"(?<![\w.,-])(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?![\w-])"), _iso_date),
)
"""Phone numbers and ISO dates, read before their hyphens can look like ranges."""

DATE_AND_TIME_RULES: tuple[Rule, ...] = (
    (
        re.compile(
            rf"(?<![\d:.,])(?P<h>\d{{1,2}}):(?P<min>\d{{2}})(?::(?P<s>\d{{2}}))?(?![\d:]){_AMPM}?"
        ),
        _time,
    ),
    (re.compile(rf"(?<![\w:.,])(?P<h>\d{{1,2}}){_AMPM}"), _hour),
    (
        re.compile(
            rf"\b{_MONTH}[ ](?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?![\w:]|[.,]\d)"
            r"(?:,?[ ](?P<year>\d{4})(?![\w]|[.,]\d))?"
        ),
        _month_day,
    ),
    (
        re.compile(
            rf"(?<![\w.,])(?P<day>\d{{1,2}})(?:st|nd|rd|th)?[ ](?:of[ ])?{_MONTH}(?![\w])"
            r"(?:,?[ ](?P<year>\d{4})(?![\w]|[.,]\d))?"
        ),
        _day_month,
    ),
    (re.compile(rf"\b{_MONTH}[ ](?P<year>\d{{4}})(?![\w]|[.,]\d)"), _month_year),
)
"""Clock times and written dates ("November 24, 2026", "24th Nov", "Jan. 2026")."""

QUANTITY_RULES: tuple[Rule, ...] = (
    (
        re.compile(
            rf"(?:{_START}(?P<sign>[-−]))?(?P<cur>[$€£])[ ]?(?P<num>{NUMBER})"
            rf"(?:{_MAGNITUDE})?"
        ),
        _money,
    ),
    (re.compile(rf"{_SIGNED}[ ]?(?P<cur>[$€£])"), _money),
    (re.compile(rf"{_SIGNED}[ ]?¢"), _cents),
    (re.compile(rf"{_SIGNED}[ ]?(?P<pct>[%‰])"), _percent),
    (re.compile(rf"{_SIGNED}[ ]?(?P<unit>{_UNIT})(?![\w²³])"), _unit),
)
"""Money, percentages and numbers with units."""
