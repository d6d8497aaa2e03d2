"""English text normalization: written forms to the words a reader would say.

`normalize_en` applies its rules in an order where each one sees the text before a
later, more general rule could misread it:

1. other scripts' decimal digits folded to ASCII;
2. e-mail addresses and URLs ("example dot com slash docs");
3. abbreviations, "No." and "#" before numbers ("Dr. Smith" -> "Doctor Smith");
4. phone numbers (digit by digit, in groups) and ISO dates;
5. ranges ("10-20" -> "10 to 20");
6. clock times and written dates;
7. codes (`voxserve.text.en_codes`): reference numbers digit by digit, flight, room and
   gate numbers in pairs, codes of capitals and digits ("B12", "XKQ7PD");
8. decades ("1990s", before "s" can mean seconds);
9. money, percentages, units ("5 kg" -> "five kilograms");
10. ordinals, eras, negative numbers, years, versions, decimals, thousands;
11. acronyms said as letters ("FBI" -> "ef bee eye"; "NASA" stays), after the units and
    AM/PM that are capitals too;
12. symbols (& + = @ ° /) and, last, every remaining digit as a cardinal number.

Sentence punctuation survives, so the splitter still sees where sentences end; the
periods of expanded abbreviations go, unless the abbreviation ended the sentence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

from voxserve.text.en_codes import ACRONYM_RULES, CODE_RULES
from voxserve.text.en_rules import (
    DATE_AND_TIME_RULES,
    NUMBER,
    PHONE_AND_DATE_RULES,
    QUANTITY_RULES,
    WEB_RULES,
    Rule,
    ends_sentence,
    read_number,
)
from voxserve.text.numbers import digits, integer_words, ordinal, year

__all__ = ["normalize_en"]

# Titles precede a name or number, so their period never ends a sentence.
_TITLES = {
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Prof": "Professor",
    "Mt": "Mount",
    "Capt": "Captain",
    "Lt": "Lieutenant",
    "Sgt": "Sergeant",
    "Gov": "Governor",
    "Rev": "Reverend",
    "Apt": "Apartment",
    "Fig": "Figure",
    "Vol": "Volume",
}
# These often end a sentence; their period stays when the next word starts one.
_ENDERS = {
    "Jr": "Junior",
    "Sr": "Senior",
    "Ave": "Avenue",
    "Blvd": "Boulevard",
    "Rd": "Road",
    "Inc": "Incorporated",
    "Ltd": "Limited",
    "Corp": "Corporation",
    "Dept": "Department",
    "etc": "et cetera",
    "approx": "approximately",
    "Approx": "Approximately",
}
# These sit inside a sentence and are always replaced whole.
_INLINE = {
    "e.g.": "for example",
    "E.g.": "For example",
    "i.e.": "that is",
    "I.e.": "That is",
    "a.k.a.": "also known as",
    "vs.": "versus",
    "vs": "versus",
    "cf.": "compare",
}
# "St." is Saint before a name and Street after one; "Dr." is Doctor or Drive.
_PLACE_OR_PERSON = {"St": ("Saint", "Street"), "Dr": ("Doctor", "Drive")}
# A capitalized word counts as a name only when it does not just start the sentence.
_NAME_BEFORE = re.compile(r"[^.!?\s]\s+(?:[A-Z][\w'’-]*|\d+(?:st|nd|rd|th)?)\s+$")
_LOOK_BACK = 80
_NAME_AFTER = re.compile(r"\s?[\"“]?[A-Z]")


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _title(match: re.Match[str]) -> str:
    return _TITLES[match["abbr"]]


def _ender(match: re.Match[str]) -> str:
    spoken = _ENDERS[match["abbr"]]
    return spoken + "." if ends_sentence(match.string, match.end()) else spoken


def _inline(match: re.Match[str]) -> str:
    return _INLINE[match[0]]


def _place_or_person(match: re.Match[str]) -> str:
    person, place = _PLACE_OR_PERSON[match["abbr"]]
    text = match.string
    window = max(0, match.start() - _LOOK_BACK)
    name_before = _NAME_BEFORE.search(text, window, match.start()) is not None
    name_after = _NAME_AFTER.match(text, match.end()) is not None
    if name_after and not name_before:
        return person
    if match[0].endswith(".") and ends_sentence(text, match.end()):
        return place + "."
    return place


def _number_sign(match: re.Match[str]) -> str:
    return "numbers " if match["abbr"].lower() == "nos" else "number "


_ABBREVIATION_RULES: tuple[Rule, ...] = (
    (re.compile(rf"(?<![\w.])(?:{_alternation(_INLINE)})(?!\w)"), _inline),
    (
        re.compile(rf"(?<![\w.])(?P<abbr>{_alternation(_TITLES)})(?:\.|(?=[ ][A-Z]))"),
        _title,
    ),
    (
        re.compile(rf"(?<![\w.])(?P<abbr>{_alternation(_PLACE_OR_PERSON)})(?:\.|(?=[ ][A-Z]))"),
        _place_or_person,
    ),
    (re.compile(rf"(?<![\w.])(?P<abbr>{_alternation(_ENDERS)})\."), _ender),
    (re.compile(r"(?<![\w.])(?P<abbr>No|no|Nos|nos)\.[ ]?(?=#?\d)"), _number_sign),
    (re.compile(r"[#№][ ]?(?=\d)"), lambda _: "number "),
    (re.compile(r"~[ ]?(?=\d)"), lambda _: "about "),
)

_CHAIN_BEFORE = re.compile(r"\d[-–][\d.:,]*\Z")
_CHAIN_AFTER = re.compile(r"[$€£]?[\d.:,]*\d[-–]\d")


def _range(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    # "978-3-16-148410-0" is an identifier, not a range: only two numbers make one.
    if _CHAIN_BEFORE.search(text[max(0, start - 64) : start]) or _CHAIN_AFTER.match(text, end):
        return match[0]
    return " to "


# "5-10" and "3:30–4:30" are ranges; a spaced hyphen ("5 - 3") is subtraction.
_RANGE_RULES: tuple[Rule, ...] = ((re.compile(r"(?<=\d)(?:-|[ ]?–[ ]?)(?=[$€£]?\.?\d)"), _range),)


def _plural(words: str) -> str:
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _decade(match: re.Match[str]) -> str:
    number = int(match["n"])
    return _plural(year(number) if number >= 100 else integer_words(match["n"]))


def _ordinal(match: re.Match[str]) -> str:
    number = match["n"].replace(",", "")
    if len(number) > 18:
        # Too long for a cardinal: read the digits and make only the last one ordinal.
        return f"{digits(number[:-1])} {ordinal(int(number[-1]))}"
    return ordinal(int(number))


def _era(match: re.Match[str]) -> str:
    era = match["era"].replace(".", "")
    spoken = f"{year(int(match['n']))} {' '.join(era)}"
    # "B.C." swallowed a period that may also have ended the sentence.
    if match["era"].endswith(".") and ends_sentence(match.string, match.end()):
        return spoken + "."
    return spoken


def _negative(match: re.Match[str]) -> str:
    return f"minus {read_number(match['num'])}"


def _version(match: re.Match[str]) -> str:
    return " dot ".join(integer_words(part) for part in match[0].split("."))


# Before units, or "1990s" would be read as seconds.
_DECADE_RULES: tuple[Rule, ...] = (
    (re.compile(r"(?<![\w.,])(?:['’](?=\d))?(?P<n>[2-9]0|1[1-9]\d0|20\d0)s(?!\w)"), _decade),
)

_NUMBER_RULES: tuple[Rule, ...] = (
    (re.compile(r"(?<![\w.,])(?P<n>\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th)(?!\w)"), _ordinal),
    (
        re.compile(r"(?<![\w.,])(?P<n>\d{1,4})[ ]?(?P<era>BCE|BC|CE|AD|B\.C\.|A\.D\.)(?![\w])"),
        _era,
    ),
    (re.compile(rf"(?<![\w.,\-−])[-−](?P<num>{NUMBER})"), _negative),
    (re.compile(r"(?<![\w.,])(?:1[1-9]\d\d|20\d\d)(?![\w]|[.,]\d)"), lambda m: year(int(m[0]))),
    (re.compile(r"(?<![\d.,])\d+(?:\.\d+){2,}(?![.,]?\d)"), _version),
    (re.compile(rf"(?<![\d.,]){NUMBER}"), lambda m: read_number(m[0])),
)

_SYMBOL_RULES: tuple[Rule, ...] = (
    (re.compile(r"&"), lambda _: " and "),
    (re.compile(r"©"), lambda _: " copyright "),
    (re.compile(r"®"), lambda _: " registered "),
    (re.compile(r"™"), lambda _: " trademark "),
    (re.compile(r"±"), lambda _: " plus or minus "),
    (re.compile(r"\+"), lambda _: " plus "),
    (re.compile(r"−"), lambda _: " minus "),
    (re.compile(r"(?<=\w)[ ]?×[ ]?(?=\w)"), lambda _: " times "),
    (re.compile(r"="), lambda _: " equals "),
    (re.compile(r"@"), lambda _: " at "),
    (re.compile(r"%"), lambda _: " percent "),
    (re.compile(r"°"), lambda _: " degrees "),
    (re.compile(r"(?<=[^\W_])/(?=[^\W_])"), lambda _: " slash "),
)

# Whatever the rules above left: every digit run is read, so none reaches the phonemizer.
_LEFTOVER_DIGITS: tuple[Rule, ...] = ((re.compile(r"\d+"), lambda m: integer_words(m[0])),)

_PIPELINE: tuple[tuple[Rule, ...], ...] = (
    WEB_RULES,
    _ABBREVIATION_RULES,
    PHONE_AND_DATE_RULES,
    _RANGE_RULES,
    DATE_AND_TIME_RULES,
    CODE_RULES,
    _DECADE_RULES,
    QUANTITY_RULES,
    _NUMBER_RULES,
    ACRONYM_RULES,
    _SYMBOL_RULES,
    _LEFTOVER_DIGITS,
)

_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")
_SPACES = re.compile(r"[^\S\n]+")
_SPACE_AROUND_BREAK = re.compile(r" ?\n ?")


def _spaced(replace: Callable[[re.Match[str]], str]) -> Callable[[re.Match[str]], str]:
    """Wrap a rule so its words never fuse with a neighbouring word ("A4" -> "A four")."""

    def wrapper(match: re.Match[str]) -> str:
        words = replace(match)
        if words == match[0] or not words:
            return words
        text, start, end = match.string, match.start(), match.end()
        if start and text[start - 1].isalnum() and words[0].isalnum():
            words = " " + words
        if end < len(text) and text[end].isalnum() and words[-1].isalnum():
            words += " "
        return words

    return wrapper


def normalize_en(text: str) -> str:
    """Turn written English into the words a reader would say.

    ``"Dr. Smith paid $3.50 on 2026-11-24."`` becomes ``"Doctor Smith paid three dollars
    and fifty cents on November twenty-fourth, twenty twenty-six."``. The result has no
    digits left. Expects text cleaned by `voxserve.text.clean.sanitize`, but accepts any.
    """
    text = _NON_ASCII_DIGIT.sub(lambda m: str(unicodedata.decimal(m[0])), text)
    for rules in _PIPELINE:
        for pattern, replace in rules:
            text = pattern.sub(_spaced(replace), text)
    text = _SPACES.sub(" ", text)
    return _SPACE_AROUND_BREAK.sub("\n", text).strip()
