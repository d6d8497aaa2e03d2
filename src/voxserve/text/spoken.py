"""Runs of text (plain or from SSML) to the sentences a voice speaks, each with its own
rate, volume and pause after it.

::

    runs ─► lexicon (text runs: words, patterns → alias or IPA)
         ─► per run: normalize, say-as, alias, IPA as a phoneme block [[...]]
         ─► groups: cut where the rate or volume changes, at a break, at <s>/<p>
         ─► sentences of each group (split_sentences), each with its pause after it

A break adds its silence at its place: after the sentence before it (on top of the
sentence silence when that sentence had ended), or inside a sentence, which is then
spoken in two parts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from voxserve.text.en_codes import LETTER_NAMES
from voxserve.text.en_rules import read_number
from voxserve.text.lexicon import Lexicon, Segment, reads_names
from voxserve.text.normalize import language_prefix, normalize
from voxserve.text.numbers import digits, ordinal
from voxserve.text.split import split_sentences
from voxserve.text.ssml import FALLBACK, Run

__all__ = [
    "LETTER_NAMES",
    "Mark",
    "Reader",
    "Spoken",
    "SpokenSentence",
    "plain_runs",
    "render",
    "say_as",
    "spell",
]

_SYMBOL_NAMES = {
    "-": "dash", "_": "underscore", "/": "slash", ".": "dot", "@": "at", "#": "hash",
    "+": "plus", "&": "and", "*": "star", ":": "colon",
}  # fmt: skip
_ENDS_SENTENCE = re.compile(r"[.!?…。！？][\"'”’»)\]]*\s*\Z")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" ([.,!?;:])(?=\s|\Z)")
_DATE = re.compile(r"(\d{1,4})[-/.](\d{1,2})[-/.](\d{1,4})\Z")


@dataclass(frozen=True)
class SpokenSentence:
    """One sentence to speak and how."""

    text: str
    """Normalized text; IPA stands in phoneme blocks ``[[...]]``."""
    rate: float
    """Speed multiplier over the request's speed."""
    volume: float
    """Gain multiplier over the request's volume."""
    pause: float
    """Seconds of silence after it."""
    voice: str | None = None
    """The ``<voice name>`` it is spoken in (None: the request's voice)."""


@dataclass(frozen=True)
class Reader:
    """How a voice reads: what :func:`render` needs of each voice a document names."""

    voice: str
    """Its id (lexicon entries may be for one voice)."""
    language: str
    """Its language: the text rules normalize for it."""
    phonemes: bool
    """Whether it takes IPA phoneme blocks (Piper)."""


@dataclass(frozen=True)
class Mark:
    """An SSML ``<mark>``: where in the sentences it stands."""

    name: str
    sentence: int
    """Index of the sentence it precedes (the number of sentences when it ends the text)."""
    offset: int
    """Characters into that sentence's text."""


@dataclass(frozen=True)
class Spoken:
    sentences: tuple[SpokenSentence, ...]
    marks: tuple[Mark, ...] = ()


def spell(text: str, language: str = "en") -> str:
    """Read ``text`` character by character: letters by name, digits as digits."""
    english = language_prefix(language) == "en"
    words = []
    for ch in text:
        if ch.isspace():
            continue
        if ch.isdecimal() and ch.isascii():
            words.append(digits(ch))
        elif english and ch.lower() in LETTER_NAMES:
            words.append(LETTER_NAMES[ch.lower()])
        elif english and ch in _SYMBOL_NAMES:
            words.append(_SYMBOL_NAMES[ch])
        elif ch.isalnum():
            words.append(ch)
    return " ".join(words)


def say_as(text: str, interpret_as: str, fmt: str | None, language: str) -> str:
    """``text`` read as ``<say-as interpret-as=... format=...>`` asks."""
    plain = text.strip()
    compact = plain.replace(",", "").replace(" ", "")
    if interpret_as in ("characters", "spell-out"):
        return spell(plain, language)
    if interpret_as == "digits":
        return spell("".join(ch for ch in plain if ch.isdecimal()) or plain, language)
    if interpret_as in ("cardinal", "number") and re.fullmatch(r"[-−]?\d+(?:\.\d+)?", compact):
        sign = "minus " if compact[0] in "-−" else ""
        return sign + read_number(compact.lstrip("-−"))
    if interpret_as == "ordinal":
        number = re.sub(r"(?:st|nd|rd|th)\Z", "", compact)
        if number.isdecimal() and len(number) <= 18:
            return ordinal(int(number))
    if interpret_as == "telephone":
        groups = re.findall(r"\d+", plain)
        if groups:
            spoken = ", ".join(spell(g, language) for g in groups)
            return f"plus {spoken}" if plain.startswith("+") else spoken
    if interpret_as == "date" and (match := _DATE.match(compact)):
        text = _iso(match, (fmt or "mdy").lower()) or plain
    return normalize(text, language)


def _iso(match: re.Match[str], fmt: str) -> str | None:
    """A numeric date in the order ``fmt`` names, written as ISO for the date rules."""
    order = [c for c in fmt if c in "dmy"]
    if sorted(order) != ["d", "m", "y"]:
        return None
    parts = dict(zip(order, match.groups(), strict=True))
    year = parts["y"] if len(parts["y"]) == 4 else f"20{int(parts['y']):02d}"
    return f"{year}-{int(parts['m']):02d}-{int(parts['d']):02d}"


class _Renderer:
    def __init__(
        self,
        reader: Reader,
        readers: Mapping[str, Reader],
        lexicon: Lexicon | None,
        max_chars: int,
    ) -> None:
        self.default = reader
        self.readers = readers
        self.lexicon = lexicon
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.rate = 1.0
        self.volume = 1.0
        self.name: str | None = None
        """The ``<voice name>`` in force."""
        self.sentences: list[SpokenSentence] = []
        self.marks: list[Mark] = []
        self.ended: list[bool] = []
        self.breaks: list[float] = []

    @property
    def reader(self) -> Reader:
        return self.default if self.name is None else self.readers[self.name]

    @property
    def language(self) -> str:
        return self.reader.language

    @property
    def voice(self) -> str:
        return self.reader.voice

    @property
    def phonemes(self) -> bool:
        return self.reader.phonemes

    def text(self, run: Run) -> None:
        if run.interpret_as == FALLBACK:
            if not self.phonemes:
                self.segment(Segment("text", run.value))
            return
        if run.interpret_as is not None:
            self.say(say_as(run.value, run.interpret_as, run.format, self.language))
            return
        if self.lexicon is None:
            segments = [Segment("text", run.value)]
        else:
            names = reads_names(self.language, self.phonemes)
            segments = self.lexicon.apply(run.value, self.voice, names=names)
        for segment in segments:
            self.segment(segment)

    def segment(self, segment: Segment) -> None:
        if segment.kind == "phonemes":
            if self.phonemes:
                ipa = "".join(ch for ch in segment.value if ch not in ".!?[]\n")
                self.say(f"[[ {ipa.strip()} ]]")
            return
        spoken = normalize(segment.value, self.language)
        # Normalizing strips the spaces at the ends: keep the word boundary they made.
        if segment.value[:1].isspace():
            spoken = " " + spoken
        if segment.value[-1:].isspace():
            spoken += " "
        self.say(spoken, raw=True)

    def say(self, words: str, *, raw: bool = False) -> None:
        if not raw and words:
            words = f" {words} "
        self.parts.append(words)

    def start(self, run: Run) -> None:
        """Begin a run with its rate, volume and voice; a change ends the group before it."""
        if (run.rate, run.volume, run.voice) != (self.rate, self.volume, self.name):
            if "".join(self.parts).strip():
                self.flush(0.0)
            self.rate, self.volume, self.name = run.rate, run.volume, run.voice

    def mark(self, name: str) -> None:
        pieces = self.pieces(re.sub(r"\s+", " ", "".join(self.parts)).strip())
        if pieces and _ENDS_SENTENCE.search(pieces[-1]) is None:
            # Inside a sentence: so many characters into it.
            sentence, offset = len(self.sentences) + len(pieces) - 1, len(pieces[-1]) + 1
        else:
            sentence, offset = len(self.sentences) + len(pieces), 0
        self.marks.append(Mark(name, sentence, offset))

    def pieces(self, text: str) -> list[str]:
        return [s for s in split_sentences(text, self.max_chars) if any(c.isalnum() for c in s)]

    def flush(self, extra: float, *, boundary: bool = False) -> None:
        """End the group: each of its sentences gets the sentence silence after it if it
        ended one (not a group cut mid-sentence), and the last ``extra`` more (a break)."""
        text = re.sub(r"[^\S\n]+", " ", "".join(self.parts)).strip()
        text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
        self.parts = []
        pieces = self.pieces(text)
        if not pieces:
            if self.sentences:  # a break after an empty group: it adds to the last pause
                self.breaks[-1] += extra
            return  # a break before the first word: nothing to pause after
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            ended = not last or boundary or _ENDS_SENTENCE.search(piece) is not None
            self.sentences.append(SpokenSentence(piece, self.rate, self.volume, 0.0, self.name))
            self.ended.append(ended)
            self.breaks.append(extra if last else 0.0)


def render(
    runs: Sequence[Run],
    *,
    language: str,
    voice: str,
    sentence_silence: float,
    max_sentence_chars: int,
    lexicon: Lexicon | None = None,
    phonemes: bool = True,
    voices: Mapping[str, Reader] | None = None,
) -> Spoken:
    """The sentences of ``runs`` for a voice of ``language``.

    ``phonemes``: whether the voice takes IPA phoneme blocks (Piper); otherwise IPA (from
    ``<phoneme>`` or the lexicon) is left out. Every sentence that ends one is followed by
    ``sentence_silence`` and every break by its own silence; the last sentence keeps only
    its breaks (the request's audio ends with its last word, as without SSML).

    ``voices``: how each voice a ``<voice name>`` names reads (every name the runs carry);
    text outside them is read by ``voice`` (its ``language``, its ``phonemes``). A change
    of voice ends the sentence group, as a change of rate does.
    """
    reader = Reader(voice, language, phonemes)
    r = _Renderer(reader, voices or {}, lexicon, max_sentence_chars)
    for run in runs:
        if run.kind in ("text", "words", "phonemes"):
            r.start(run)
            if run.kind == "text":
                r.text(run)
            else:
                r.segment(Segment("text" if run.kind == "words" else "phonemes", run.value))
        elif run.kind == "break":
            r.flush(run.seconds)
        elif run.kind == "boundary":
            r.flush(0.0, boundary=True)
        elif run.kind == "mark":
            r.mark(run.value)
    r.flush(0.0, boundary=True)
    count = len(r.sentences)
    sentences = tuple(
        _with_pause(s, (sentence_silence if ended and i < count - 1 else 0.0) + pause)
        for i, (s, ended, pause) in enumerate(zip(r.sentences, r.ended, r.breaks, strict=True))
    )
    return Spoken(sentences, tuple(r.marks))


def _with_pause(sentence: SpokenSentence, pause: float) -> SpokenSentence:
    return SpokenSentence(sentence.text, sentence.rate, sentence.volume, pause, sentence.voice)


def plain_runs(text: str) -> list[Run]:
    """A plain text as runs."""
    return [Run("text", text)] if text else []
