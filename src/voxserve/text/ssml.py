"""SSML documents to a flat list of runs, parsed by a hardened XML parser.

The parser is the stdlib's expat with everything that makes XML dangerous refused before
it can act: a document type declaration (and with it every entity declaration, so no
billion laughs and no external entity) is an error at its first character, as is any
entity reference other than the five predefined ones; elements nest at most
:data:`MAX_DEPTH` deep and an attribute value is at most :data:`MAX_ATTRIBUTE_CHARS`
long. Every error names the line and column of the document where it was found.

The result is a sequence of :class:`Run`: text with how to read it, breaks, sentence
boundaries and marks, each carrying the rate and volume in force. ``voxserve.text.spoken``
turns runs into sentences; docs/ssml.md lists every tag.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Literal
from xml.parsers import expat

from voxserve.errors import InvalidSsml
from voxserve.text.xmlsafe import Refused, new_parser, parse, refusal

__all__ = [
    "MAX_ATTRIBUTE_CHARS",
    "MAX_DEPTH",
    "Document",
    "Run",
    "could_be_ssml",
    "is_ssml",
    "parse_ssml",
]

#: Deepest nesting of elements a document may have.
MAX_DEPTH = 64
#: Longest attribute value (a phoneme string, an alias) in characters.
MAX_ATTRIBUTE_CHARS = 2000
#: Longest single break, in seconds (W3C: processors may cap it; Azure caps at 5 s).
MAX_BREAK_SECONDS = 10.0

RunKind = Literal["text", "words", "phonemes", "break", "boundary", "mark"]

SAY_AS = frozenset(
    {
        "characters",
        "spell-out",
        "cardinal",
        "number",
        "ordinal",
        "digits",
        "date",
        "time",
        "telephone",
        "currency",
    }
)

_BREAK_STRENGTH = {
    "none": 0.0,
    "x-weak": 0.1,
    "weak": 0.25,
    "medium": 0.4,
    "strong": 0.75,
    "x-strong": 1.25,
}
_RATE_WORDS = {
    "x-slow": 0.6,
    "slow": 0.8,
    "medium": 1.0,
    "default": 1.0,
    "fast": 1.25,
    "x-fast": 1.5,
}
_VOLUME_WORDS = {
    "silent": 0.0,
    "x-soft": 0.3,
    "soft": 0.6,
    "medium": 1.0,
    "default": 1.0,
    "loud": 1.4,
    "x-loud": 1.8,
}
# Emphasis: the engine has no stress control, so a little slower and louder.
_EMPHASIS = {
    "strong": (0.85, 1.25),
    "moderate": (0.92, 1.12),
    "none": (1.0, 1.0),
    "reduced": (1.1, 0.8),
}
#: interpret_as of a ``<phoneme>``'s own text: spoken only by voices that take no IPA.
FALLBACK = "phoneme-fallback"
_TIME = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)\s*\Z")
_DECIBELS = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*dB\s*\Z")
_PERCENT = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*%\s*\Z")
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*\Z")
# Tags whose content is spoken as if the tag were not there.
_TRANSPARENT = frozenset({"speak", "voice", "lang", "audio", "emphasis", "prosody"})
# Tags that bound a sentence.
_BLOCKS = frozenset({"p", "s", "paragraph", "sentence"})
_KNOWN = _TRANSPARENT | _BLOCKS | {"break", "say-as", "sub", "phoneme", "mark"}


@dataclass(frozen=True)
class Run:
    """One piece of a document, in order."""

    kind: RunKind
    """text: written text to normalize; words: spoken as written (a ``sub`` alias, still
    normalized); phonemes: IPA; break: silence; boundary: a sentence ends; mark: a name."""
    value: str = ""
    """The text, alias, IPA string or mark name."""
    interpret_as: str | None = None
    """``say-as``'s interpret-as for text inside one."""
    format: str | None = None
    """``say-as``'s format (dates: mdy, dmy, ymd...)."""
    rate: float = 1.0
    """Speaking rate multiplier in force (prosody, emphasis)."""
    volume: float = 1.0
    """Gain multiplier in force."""
    seconds: float = 0.0
    """Length of a break."""
    voice: str | None = None
    """The ``<voice name>`` in force (None: the request's voice)."""


@dataclass(frozen=True)
class Document:
    """A parsed SSML document."""

    runs: tuple[Run, ...]
    """Everything to say, in order."""
    warnings: tuple[str, ...]
    """What was accepted but not done (unknown tags, unsupported attributes)."""
    voice: str | None = None
    """The name of the first ``<voice>`` element, if any."""
    voices: tuple[tuple[str, str], ...] = ()
    """Each voice name the ``<voice>`` elements give, with where it is first named ("line
    3, column 7"), in order of appearance: the caller resolves them to installed voices."""


def is_ssml(text: str) -> bool:
    """Whether ``text`` looks like an SSML document: it starts with ``<speak``, an XML
    declaration or a document type declaration (which the parser then refuses)."""
    head = text.lstrip()
    if head.startswith(("<?xml", "<!DOCTYPE")):
        return True
    return head.startswith("<speak") and (len(head) == 6 or not head[6].isalnum())


def could_be_ssml(head: str) -> bool | None:
    """Whether a text that begins with ``head`` (a stream's first characters) is an SSML
    document as :func:`is_ssml` says, or None while it cannot be told yet (``"<spe"``)."""
    start = head.lstrip()
    if is_ssml(start):
        return True
    if not start or any(p.startswith(start) for p in ("<speak", "<?xml", "<!DOCTYPE")):
        return None
    return False


def _describe(line: int, column: int, what: str) -> str:
    return f"Invalid SSML at line {line}, column {column}: {what}"


@dataclass(frozen=True)
class _Frame:
    tag: str
    state: Run
    """The rate, volume and say-as in force inside this element (kind unused)."""
    skip: bool = False
    """Content not spoken (sub's text, phoneme's fallback text, an unknown tag's text is
    still spoken)."""


class _Builder:
    def __init__(self, parser: expat.XMLParserType) -> None:
        self.parser = parser
        self.runs: list[Run] = []
        self.warnings: list[str] = []
        self.stack: list[_Frame] = []
        self.voice: str | None = None
        self.voices: dict[str, str] = {}
        self.seen_root = False

    # -- helpers ---------------------------------------------------------------------

    def where(self) -> str:
        return f"line {self.parser.CurrentLineNumber}, column {self.parser.CurrentColumnNumber + 1}"

    def fail(self, what: str) -> Refused:
        return refusal(self.parser, _describe, what)

    def warn(self, what: str) -> None:
        if what not in self.warnings and len(self.warnings) < 20:
            self.warnings.append(what)

    @property
    def state(self) -> Run:
        return self.stack[-1].state if self.stack else Run("text")

    def add(self, run: Run) -> None:
        self.runs.append(run)

    @staticmethod
    def _spoken(state: Run, kind: RunKind, value: str) -> Run:
        """A run spoken as the state in force says (rate, volume, voice)."""
        return Run(kind, value, rate=state.rate, volume=state.volume, voice=state.voice)

    # -- expat handlers --------------------------------------------------------------

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = name.rsplit(" ", 1)[-1]  # a namespace URI precedes the local name
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(f"elements nest more than {MAX_DEPTH} deep.")
        for key, value in attrs.items():
            if len(value) > MAX_ATTRIBUTE_CHARS:
                short = key.rsplit(" ", 1)[-1]
                raise self.fail(
                    f"attribute {short!r} of <{tag}> is {len(value)} characters long "
                    f"(at most {MAX_ATTRIBUTE_CHARS})."
                )
        attrs = {k.rsplit(" ", 1)[-1]: v for k, v in attrs.items()}
        if not self.seen_root:
            self.seen_root = True
            if tag != "speak":
                raise self.fail(f"the root element must be <speak>, not <{tag}>.")
        state, skip = self.state, bool(self.stack and self.stack[-1].skip)
        state, skip = self._element(tag, attrs, state, skip)
        self.stack.append(_Frame(tag, state, skip))

    def _element(self, tag: str, attrs: dict[str, str], state: Run, skip: bool) -> tuple[Run, bool]:
        """What an opening tag does: runs it adds, and the state inside it."""
        if tag in _BLOCKS:
            self.add(Run("boundary"))
        elif tag == "break":
            self.add(Run("break", seconds=self._break_seconds(attrs), rate=state.rate))
        elif tag == "prosody":
            state = self._prosody(state, attrs)
        elif tag == "emphasis":
            rate, volume = _EMPHASIS.get(attrs.get("level", "moderate"), (None, None))
            if rate is None or volume is None:
                raise self.fail(
                    f"emphasis level must be one of {', '.join(_EMPHASIS)}; got {attrs['level']!r}."
                )
            state = replace(state, rate=state.rate * rate, volume=state.volume * volume)
        elif tag == "say-as":
            kind = attrs.get("interpret-as", "").strip().lower()
            if kind not in SAY_AS:
                raise self.fail(
                    f"say-as interpret-as must be one of {', '.join(sorted(SAY_AS))}; got {kind!r}."
                )
            state = replace(state, interpret_as=kind, format=attrs.get("format"))
        elif tag == "sub":
            if "alias" not in attrs:
                raise self.fail("<sub> needs an alias attribute.")
            if not skip:
                self.add(self._spoken(state, "words", attrs["alias"]))
            skip = True
        elif tag == "phoneme":
            alphabet = attrs.get("alphabet", "ipa").strip().lower()
            if alphabet != "ipa":
                raise self.fail(f"phoneme alphabet must be 'ipa'; got {alphabet!r}.")
            if not attrs.get("ph", "").strip():
                raise self.fail("<phoneme> needs a ph attribute (IPA).")
            if not skip:
                self.add(self._spoken(state, "phonemes", attrs["ph"]))
            # Its text is what a voice that takes no IPA says instead.
            state = replace(state, interpret_as=FALLBACK)
        elif tag == "mark":
            if not skip:
                self.add(Run("mark", attrs.get("name", "")))
        elif tag == "voice":
            name = attrs.get("name", "").strip()
            if name:
                self.voice = self.voice or name
                self.voices.setdefault(name, self.where())
                state = replace(state, voice=name)
            for unsupported in ("gender", "age", "variant", "languages", "required"):
                if unsupported in attrs:
                    self.warn(f"<voice {unsupported}> is not supported: name a voice id")
        elif tag not in _KNOWN:
            self.warn(f"<{tag}> is not supported; its text is spoken without it")
        return state, skip

    def end(self, name: str) -> None:
        frame = self.stack.pop()
        if frame.tag in _BLOCKS:
            self.add(Run("boundary"))

    def text(self, data: str) -> None:
        if not self.stack:
            return
        frame = self.stack[-1]
        if frame.skip:
            return
        state = frame.state
        self.add(
            Run(
                "text",
                data,
                interpret_as=state.interpret_as,
                format=state.format,
                rate=state.rate,
                volume=state.volume,
                voice=state.voice,
            )
        )

    # -- attribute values --------------------------------------------------------------

    def _break_seconds(self, attrs: dict[str, str]) -> float:
        if "time" in attrs:
            match = _TIME.match(attrs["time"])
            if match is None:
                raise self.fail(
                    f"break time must be like '500ms' or '1.5s'; got {attrs['time']!r}."
                )
            seconds = float(match[1]) / (1000 if match[2] == "ms" else 1)
            if seconds > MAX_BREAK_SECONDS:
                raise self.fail(
                    f"a break is at most {MAX_BREAK_SECONDS:g} s; got {attrs['time']!r}."
                )
            return seconds
        strength = attrs.get("strength", "medium")
        if strength not in _BREAK_STRENGTH:
            raise self.fail(
                f"break strength must be one of {', '.join(_BREAK_STRENGTH)}; got {strength!r}."
            )
        return _BREAK_STRENGTH[strength]

    def _prosody(self, state: Run, attrs: dict[str, str]) -> Run:
        for unsupported in ("pitch", "range", "contour", "duration"):
            if unsupported in attrs:
                self.warn(f"<prosody {unsupported}> is not supported by this engine")
        rate, volume = state.rate, state.volume
        if "rate" in attrs:
            rate *= self._factor("rate", attrs["rate"], _RATE_WORDS, decibels=False)
        if "volume" in attrs:
            volume *= self._factor("volume", attrs["volume"], _VOLUME_WORDS, decibels=True)
        return replace(state, rate=rate, volume=volume)

    def _factor(self, name: str, value: str, words: dict[str, float], *, decibels: bool) -> float:
        """A prosody value as a multiplier: a keyword, "150%", "+20%", "1.5", "+6dB"."""
        word = value.strip().lower()
        if word in words:
            return words[word]
        factor: float | None = None
        if (match := _PERCENT.match(value)) is not None:
            signed = match[1][0] in "+-"
            factor = (100 + float(match[1])) / 100 if signed else float(match[1]) / 100
        elif (match := _NUMBER.match(value)) is not None:
            factor = float(match[1])
        elif decibels and (match := _DECIBELS.match(value)) is not None:
            factor = 10 ** (float(match[1]) / 20)
        if factor is None or not math.isfinite(factor) or not 0 <= factor <= 10:
            forms = "'slow', '150%', '+20%', '1.5'" + (", '+6dB'" if decibels else "")
            raise self.fail(f"prosody {name} must be like {forms}; got {value!r}.")
        return factor


def parse_ssml(document: str) -> Document:
    """Parse an SSML document; raises InvalidSsml naming the line, column and problem."""
    parser = new_parser()
    builder = _Builder(parser)
    try:
        parse(document, parser, _describe, start=builder.start, end=builder.end, text=builder.text)
    except Refused as exc:
        raise InvalidSsml(str(exc)) from None
    except RecursionError:  # defensive: expat itself is iterative
        raise InvalidSsml(f"Invalid SSML: elements nest more than {MAX_DEPTH} deep.") from None
    return Document(
        runs=tuple(builder.runs),
        warnings=tuple(builder.warnings),
        voice=builder.voice,
        voices=tuple(builder.voices.items()),
    )
