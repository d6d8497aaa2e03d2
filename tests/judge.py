"""Scoring a round trip (text -> voxserve -> Whisper tiny.en -> text) on the speech, not
on how Whisper writes what it heard.

A careful reader's words and Whisper's digits meet in Whisper's English normalizer
(voxserve.asr.wer). What it leaves unequal is the judge's style, not an error of the
speech, and :func:`score` makes it equal on both sides first:

- letters said one by one: Whisper writes "FBI", "F-B-I" or "F B I" as it likes; every run
  of capitals is split into its letters (and letters from digits), except the acronyms
  said as words (NASA): :func:`letters_apart`;
- units after a number: "64 GB" and "64 gigabytes", "0-60" and "zero to sixty";
- telephone numbers: "555-0142" and "five five five, zero one four two"; digits said one
  by one: "9-1-3-4" and "nine one three four";
- clock times: "6.45pm", "6:45 p.m." and "six forty-five p.m." are one form.
"""

from __future__ import annotations

import re

import jiwer

from voxserve.asr.wer import normalize
from voxserve.text.en_codes import WORD_ACRONYMS

__all__ = ["letters_apart", "score", "spoken_form"]

_CAPITALS = re.compile(r"\b[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?\b")
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th|s)")
_WORD_ACRONYMS = {w.upper() for w in WORD_ACRONYMS}
_UNITS = {
    "KB": "kilobytes", "MB": "megabytes", "GB": "gigabytes", "TB": "terabytes",
    "kg": "kilograms", "km": "kilometers", "cm": "centimeters", "mm": "millimeters",
    "mph": "miles per hour", "MPH": "miles per hour", "km/h": "kilometers per hour",
}  # fmt: skip
_UNIT = re.compile(r"(\d)\s?(" + "|".join(re.escape(u) for u in _UNITS) + r")\b")
_DIGITS = re.compile(r"\b\d+(?:-\d+)+\b")
_PHONE = re.compile(r"\b(\d{3})[-.](\d{3}[-.])?(\d{4})\b")
_CLOCK = re.compile(r"\b(\d{1,2})[.: ]?(\d{2}) ?([ap]) ?m\b")
_HOUR = re.compile(r"\b(\d{1,2}) ?([ap]) ?m\b")


def letters_apart(text: str) -> str:
    """ "FBI", "F.B.I." and "F-B-I" -> "F B I"; "XKQ7PD" -> "X K Q 7 P D"; "PDFs" ->
    "P D F s"; "PhD" -> "P h D"; words, numbers and word acronyms stay."""

    def split(match: re.Match[str]) -> str:
        token = match[0]
        if token == "PhD":
            return "P H D"
        bare = token.replace(".", "").replace("-", "")
        core = bare[:-1] if bare.endswith("s") else bare
        if token.isalnum() and re.search(r"\d", core) and not _ORDINAL.fullmatch(core):
            core = bare = core.upper()  # "xkq7PD": a code, whatever its case
        if core.isdecimal() or core in _WORD_ACRONYMS or not re.fullmatch(r"[A-Z0-9]+", core):
            return token
        if len(core) < 2 and bare == core and "-" not in token and "." not in token:
            return token
        parts = re.findall(r"\d+|[A-Z]", core)
        return " ".join(parts) + (" s" if bare.endswith("s") and bare != core else "")

    return _CAPITALS.sub(split, text)


def spoken_form(text: str, *, hyphen: str = " to ") -> str:
    """``text`` as :func:`score` compares it: units written out, hyphens between numbers
    as ``hyphen``, letters apart, Whisper's normalizer, clock times in one form."""
    text = _UNIT.sub(lambda m: f"{m[1]} {_UNITS[m[2]]}", text)
    text = _PHONE.sub(lambda m: "".join(g.strip("-.") for g in m.groups() if g), text)
    text = _DIGITS.sub(lambda m: m[0].replace("-", hyphen), text)
    text = normalize(letters_apart(text))
    text = _CLOCK.sub(r"\1\2 \3m", text)
    return _HOUR.sub(r"\1 \2m", text)


def score(reference: str, heard: str) -> float:
    """Word error rate of ``heard`` against ``reference``, both in :func:`spoken_form`.

    Whisper's hyphen between numbers is a range ("0-60": zero to sixty) or digits said one
    by one ("9-1-3-4", "258-0"); what was heard is scored in the reading nearer the
    reference.
    """
    ref = spoken_form(reference)
    if not ref:
        return 0.0 if not spoken_form(heard) else 1.0
    return min(float(jiwer.wer(ref, spoken_form(heard, hyphen=h))) for h in (" to ", ""))
