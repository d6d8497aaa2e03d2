"""Rules of the English normalizer for letter sequences and codes (docs/ssml.md, "Text
normalization").

People read a code the way its kind is read, not as a quantity:

- an acronym is said letter by letter ("FBI", "HTML"), unless it is said as a word: those
  in `WORD_ACRONYMS` ("NASA", "UNESCO") and, for unknown ones of four letters or more,
  those that `pronounceable` finds shaped like an English word;
- a flight number is its airline's letters and the number in pairs ("BA 2490": "B A
  twenty-four ninety");
- a room, gate, bus, platform or seat number of three or four digits is read in pairs
  ("room 305": "three oh five", "bus 1204": "twelve oh four");
- a code that mixes capitals and digits ("4B", "B12", "MP3", "XKQ7PD") has its letters
  by name and its digits as numbers of up to two digits, in pairs for three or four, and
  digit by digit beyond;
- a PIN, ID, order, account or other reference number of five digits or more (four
  after PIN, ID, code, passcode, password, "number" or a colon, where it cannot be a
  year: "in case 2020"), and any "number" of five or more, is read digit by digit ("PIN
  4071", "her PIN is 4071": "four zero seven one").

Letters are written as their names ("bee eh"), as `spell` does for ``say-as``: a letter
alone is often read as a word ("A" as "uh").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType

from voxserve.text.en_rules import Rule
from voxserve.text.numbers import cardinal, digits

__all__ = [
    "ACRONYM_RULES",
    "CODE_RULES",
    "LETTER_ACRONYMS",
    "LETTER_NAMES",
    "WORD_ACRONYMS",
    "letters",
    "paired",
    "pronounceable",
]


def _words(text: str) -> list[str]:
    return text.split()


#: How English readers name letters, spelled so that espeak-ng says each name: "ay" and
#: "eff" are not ("ay" is said "eye", "eff" is spelled out as E F F), "eh" and "ef" are.
LETTER_NAMES = {
    "a": "eh", "b": "bee", "c": "see", "d": "dee", "e": "ee", "f": "ef", "g": "gee",
    "h": "aitch", "i": "eye", "j": "jay", "k": "kay", "l": "el", "m": "em", "n": "en",
    "o": "oh", "p": "pee", "q": "cue", "r": "ar", "s": "ess", "t": "tee", "u": "you",
    "v": "vee", "w": "double you", "x": "ex", "y": "why", "z": "zee",
}  # fmt: skip

#: Acronyms said as words, whatever their shape, and how: in lower case, which espeak-ng
#: says as a word (in capitals it spells some, "PIN"), or respelled where it says the
#: word wrong ("UNESCO" as "un-esco").
WORD_ACRONYMS: Mapping[str, str] = MappingProxyType(
    {
        w: w.lower()
        for w in _words(
            """NASA NATO UNICEF FIFA UEFA NAFTA OPEC AIDS COVID SCUBA LASER RADAR SONAR
        POTUS FEMA OSHA NASDAQ IKEA LEGO DARPA ASCII GIF JPEG PIN SIM RAM ROM LAN SARS ISIS
        NOAA ICANN ECMA YAML CAPTCHA WAN SWAT ZIP CAD MIDI JSON GUI WIFI CAPEX"""
        )
    }
    | {"UNESCO": "yoonesco"}
)

#: Acronyms of four letters or more said letter by letter although word-shaped.
LETTER_ACRONYMS = frozenset({"USDA", "UCLA", "USAF", "IEEE", "AARP", "NAACP", "OPEX"})

#: All-capital words left alone: espeak-ng already says them right, or an earlier rule
#: wrote them on purpose (AM and PM after a time).
_LEAVE = frozenset({"AM", "PM", "OK"})

#: Short English words written in capitals for emphasis ("do NOT"), not acronyms. "US",
#: "IT", "WHO", "AI", "ID" and "UN" are read as letters: in capitals they are names.
_CAPITAL_WORDS = frozenset(
    _words(
        """NO NOT YES AND OR THE YOU ALL NEW NOW GO BUT DO BE IS IN ON OF TO MY WE HE SO BY AT
    IF UP ME OUT ANY OFF ONE TWO TEN BIG HOT WOW HEY GET BUY WIN YET TOO ARE CAN MAY HAS
    HAD WAS DID HOW WHY OWN OUR HER HIS ITS NOR FOR SEE SAY ASK END TOP OH HI AN AS"""
    )
)

#: Roman numerals of I, V and X ("World War II", "Louis XIV") are left to espeak-ng.
_ROMAN = re.compile(r"[IVX]+")

_VOWELS = set("AEIOU")
_ONSETS = frozenset(
    _words("BL BR CH CL CR DR FL FR GL GR PH PL PR SC SH SK SL SM SN SP ST SW TH TR TW WH")
)
_CODAS = frozenset(
    _words(
        "CH CK CT DS FT GS KS LD LF LK LL LM LP LS LT MP MS ND NG NK NS NT PS PT RD RK RM RN "
        "RS RT SH SK SP SS ST TH TS"
    )
)
_CONSONANT_RUNS = re.compile(r"[^AEIOU]+")


def pronounceable(word: str) -> bool:
    """Whether an all-capital ``word`` is shaped like an English word: four letters or
    more, a vowel (A E I O U) for every four letters or fewer, a start
    and an end that English words have ("SC", "ST"; not "HT", "CD"), and no run of more
    than two consonants inside. "NASA", "UNESCO", "STOP": yes; "HTML", "OECD", "NYPD", "ESPN": no.
    """
    if len(word) < 4 or word in LETTER_ACRONYMS:
        return False
    vowels = sum(ch in _VOWELS for ch in word)
    if not vowels or vowels * 4 < len(word):
        return False
    runs = [(m.start(), m.end()) for m in _CONSONANT_RUNS.finditer(word)]
    for start, end in runs:
        run = word[start:end]
        if len(run) == 1:
            continue
        if start == 0:
            if run not in _ONSETS:
                return False
        elif end == len(word):
            if run not in _CODAS:
                return False
        elif len(run) > 2:
            return False
    return True


def letters(text: str, *, plural: bool = False) -> str:
    """Letters by name, joined by hyphens, anything else dropped: "FBI" -> "ef-bee-eye",
    "PDF" with ``plural`` -> "pee-dee-efs".

    Joined, espeak-ng says the names as one word with a stress on each, as people say an
    acronym; apart, as separate words, Whisper misheard "the see ee oh" (CEO) as "Methase
    EO" where it heard "see-ee-oh" right.
    """
    names = [LETTER_NAMES[ch] for ch in text.lower() if ch in LETTER_NAMES]
    if plural and names:
        names[-1] = _plural_letter(names[-1])
    return "-".join(names).replace(" ", "-")


def _plural_letter(name: str) -> str:
    """The plural of a letter's name: "ohs", "effs", "esses", "aitches"."""
    return name + "es" if name.endswith(("ss", "x", "ch")) else name + "s"


def paired(number: str) -> str:
    """Digits read in pairs, as flight, room and model numbers are: "2490" "twenty-four
    ninety", "305" "three oh five", "1005" "ten oh five", "2400" "twenty-four hundred",
    "12" "twelve"; a leading zero or more than four digits: digit by digit."""
    if len(number) > 4 or (len(number) > 1 and number.startswith("0")):
        return digits(number)
    n = int(number)
    if len(number) <= 2 or n % 1000 == 0:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {cardinal(low)}"
    return f"{cardinal(high)} {cardinal(low)}"


def _code_part(part: str) -> str:
    if part.isdecimal():
        return digits(part) if len(part) > 4 else paired(part)
    if part in WORD_ACRONYMS:
        return WORD_ACRONYMS[part]
    return letters(part)


def _code(match: re.Match[str]) -> str:
    """ "B12" -> "bee twelve", "XKQ7PD" -> "ex kay cue seven pee dee"."""
    parts = re.findall(r"\d+|[A-Z]+", match[0])
    return " ".join(_code_part(p) for p in parts)


def _flight(match: re.Match[str]) -> str:
    code = " ".join(_code_part(p) for p in re.findall(r"\d+|[A-Z]+", match["code"]))
    return f"{code} {paired(match['num'])}"


def _keyword_pairs(match: re.Match[str]) -> str:
    return f"{match['key']} {paired(match['num'])}"


#: Keys after which four digits are a code too; after the others they may be a year.
_FOUR_DIGIT_KEYS = ("pin", "id", "code", "number", "passcode", "password", ":")


_LINK = re.compile(r"[ ](?:is|was|are|were)\Z", re.IGNORECASE)


def _keyword_digits(match: re.Match[str]) -> str:
    key = _LINK.sub("", match["key"])  # "PIN is 7716" as "PIN 7716"
    if len(match["num"]) == 4 and not key.lower().endswith(_FOUR_DIGIT_KEYS):
        return match[0]
    return f"{match['key']} {digits(match['num'])}"


@functools.lru_cache(maxsize=4)
def _shouted(text: str) -> bool:
    """Text in capitals only ("DO NOT ENTER THE ROOM") is words, not acronyms. Cached:
    asked once per acronym of the same text, which a string's cached hash finds at once."""
    return not any(ch.islower() for ch in text) and len(text.split()) >= 4


def _acronym(match: re.Match[str]) -> str:
    word = match["word"]
    if _shouted(match.string):
        return match[0]
    if word in WORD_ACRONYMS:
        return WORD_ACRONYMS[word] + (match["plural"] or "")
    if word in _LEAVE or word in _CAPITAL_WORDS:
        return match[0]
    if _ROMAN.fullmatch(word) or pronounceable(word):
        return match[0]
    return letters(word, plural=bool(match["plural"]))


_NOT_AFTER = r"(?<![\w.,/$€£#@-])"
_NOT_BEFORE = r"(?![\w]|[.,:]\d|-\w)"

_PAIR_KEYS = (
    r"(?i:rooms?|gates?|suites?|platforms?|terminals?|seats?|bus(?:es)?|routes?|tracks?"
    r"|piers?|bays?|docks?|flights?|highways?|channels?|exits?|interstates?|model)"
)
_DIGIT_KEYS = (
    r"(?i:PIN|ID|code|order|account|ticket|invoice|confirmation|serial|tracking|booking"
    r"|reference|ref|policy|case|zip|card|customer|member|passcode|password)"
    r"(?:[ ](?i:number|code))?"
)

CODE_RULES: tuple[Rule, ...] = (
    # "order 58213", "PIN 4071", "order number 58213" ("#" is "number" by now)
    (
        re.compile(
            rf"(?<![\w-])(?P<key>{_DIGIT_KEYS}(?:[ ](?i:number))?(?:[ ](?i:is|was|are|were))?:?)"
            rf"[ ](?P<num>\d{{4,}}){_NOT_BEFORE}"
        ),
        _keyword_digits,
    ),
    (
        re.compile(
            rf"(?<![\w-])(?P<key>(?i:number)(?:[ ](?i:is|was))?)[ ](?P<num>\d{{5,}}){_NOT_BEFORE}"
        ),
        _keyword_digits,
    ),
    # "flight DL 1005", "BA 2490", "flight U2 814"
    (
        re.compile(
            rf"(?<=(?i:flight)[ ])(?P<code>[A-Z]\d|\d[A-Z]|[A-Z]{{2,3}})[ ]?"
            rf"(?P<num>\d{{1,4}}){_NOT_BEFORE}"
        ),
        _flight,
    ),
    (
        re.compile(
            rf"{_NOT_AFTER}(?!AD|BC|CE|AM|PM)(?P<code>[A-Z]{{2}})[ ](?P<num>\d{{1,4}}){_NOT_BEFORE}"
        ),
        _flight,
    ),
    # "room 305", "bus 1204"
    (
        re.compile(rf"(?<![\w-])(?P<key>{_PAIR_KEYS})[ ](?P<num>\d{{3,4}}){_NOT_BEFORE}"),
        _keyword_pairs,
    ),
    # Codes of capitals and digits: "B12", "MP3", "XKQ7PD", "SN-4471-QX", "4B", "14C".
    (
        re.compile(
            rf"{_NOT_AFTER}(?:[A-Z]+-?\d[A-Z0-9]*(?:-[A-Z0-9]+)*|\d{{1,4}}[A-KM-Z]){_NOT_BEFORE}"
        ),
        _code,
    ),
)
"""Codes, read before the number rules can take their digits for quantities."""

ACRONYM_RULES: tuple[Rule, ...] = (
    (
        re.compile(r"(?<![\w'’])(?P<word>[A-Z]{2,})(?P<plural>s)?(?![\w])"),
        _acronym,
    ),
)
"""All-capital words read as letters, after every rule that reads capitals (units, AM)."""
