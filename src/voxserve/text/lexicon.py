"""Pronunciation lexicons: a word or a pattern to the words to say instead, or to IPA.

The file format (docs/lexicon.md)::

    # comments and blank lines are ignored
    Nguyen = win                      # a word: whole-word match, exact case
    sql = sequel                      # all lower case: matches any case (SQL, Sql)
    /\\bQ([1-4])\\b/ = quarter \\1       # a regular expression, \\1 its groups
    Siobhan = [[ʃɪˈvɔːn]]             # IPA phonemes (Piper voices) between [[ and ]]

    [en_US-joe-medium]                # entries from here apply to that voice only
    tomato = tomahto
    [*]                               # back to every voice

Files are read whole by :func:`load_lexicon` into an immutable :class:`Lexicon`; a reload
builds a new one and swaps it in. Each voice's entries have a digest, part of the cache
key of every plan spoken with them, so changed entries never meet old audio.

:data:`NAMES_LEXICON` is the bundled one: names espeak-ng says wrong, in CMUdict's
pronunciation (scripts/make-names-lexicon.py). Its entries come after every file's and
apply only to voices that read US English IPA (:func:`reads_names`). They are ~450 plain
words; a run of plain words is matched in one pass over the text's words
(:class:`_Words`) instead of a regular expression each, with the same result.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Literal

from voxserve.errors import InvalidLexicon

__all__ = [
    "NAMES_LEXICON",
    "Entry",
    "Lexicon",
    "Segment",
    "load_lexicon",
    "parse_lexicon",
    "reads_names",
]

#: Longest lexicon file, in bytes.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: The bundled names lexicon (docs/lexicon.md): US English IPA, after the other entries.
NAMES_LEXICON = Path(__file__).with_name("names.lex")
_SECTION = re.compile(r"\[\s*([^\]\s]+)\s*\]\s*\Z")
_PATTERN = re.compile(r"/(?P<pattern>.+)/(?P<flags>i?)\s*=\s*(?P<value>.*)\Z")
_WORD = re.compile(r"(?P<word>[^=]+?)\s*=\s*(?P<value>.*)\Z")
_IPA = re.compile(r"\[\[(?P<ipa>[^\[\]]+)\]\]\Z")
# An IPA string must not end a sentence or open a phoneme block of its own.
_IPA_FORBIDDEN = frozenset(".!?[]\n")

SegmentKind = Literal["text", "words", "phonemes"]


@dataclass(frozen=True)
class Segment:
    """A stretch of text after the lexicon: still text, alias words, or IPA."""

    kind: SegmentKind
    value: str


@dataclass(frozen=True)
class Entry:
    """One line of a lexicon."""

    key: str
    """The word, or the regular expression's source."""
    value: str
    """Alias text, or IPA without its brackets."""
    ipa: bool
    """Whether ``value`` is IPA."""
    regex: bool
    """Whether ``key`` is a regular expression."""
    voice: str
    """The voice id it applies to; ``*`` for every voice."""
    where: str
    """File and line, for messages."""
    ignore_case: bool = False
    """Whether a regular expression ends ``/i`` (a word ignores case when all lower case)."""

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The compiled matcher (a whole-word match for a word), compiled on first use."""
        return _compile(self.key, regex=self.regex, ignore_case=self.ignore_case, where=self.where)


def _compile(key: str, *, regex: bool, ignore_case: bool, where: str) -> re.Pattern[str]:
    if not regex:
        flags = re.IGNORECASE if key == key.lower() else 0
        return re.compile(rf"(?<!\w){re.escape(key)}(?!\w)", flags)
    try:
        pattern = re.compile(key, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise InvalidLexicon(
            f"{where}: the regular expression /{key}/ is invalid: {exc}."
        ) from None
    if pattern.match(""):
        raise InvalidLexicon(
            f"{where}: /{key}/ matches the empty string; it would match everywhere."
        )
    return pattern


def _entry(line: str, voice: str, where: str) -> Entry:
    match = _PATTERN.match(line)
    regex = match is not None
    if match is None:
        match = _WORD.match(line)
    if match is None:
        raise InvalidLexicon(
            f"{where}: expected 'word = alias', '/regex/ = alias' or 'word = [[ipa]]'; "
            f"got {line!r}."
        )
    key = match["pattern"] if regex else match["word"]
    value = match["value"].strip()
    if not value:
        raise InvalidLexicon(f"{where}: {key!r} has nothing after '='.")
    ipa_match = _IPA.match(value)
    ipa = ipa_match is not None
    if ipa_match is not None:
        value = ipa_match["ipa"].strip()
        if bad := sorted(set(value) & _IPA_FORBIDDEN):
            raise InvalidLexicon(f"{where}: IPA may not contain {' '.join(bad)!r}.")
    entry = Entry(key, value, ipa, regex, voice, where, bool(regex and match["flags"]))
    if regex:
        _ = entry.pattern  # compiled now, so that a bad expression is refused at its line
    return entry


def parse_lexicon(text: str, *, source: str = "<lexicon>") -> list[Entry]:
    """The entries of a lexicon file's text; raises InvalidLexicon naming the line."""
    entries: list[Entry] = []
    voice = "*"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line.startswith("/"):  # a regex may hold " #"
            line = line.split(" #", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        section = _SECTION.match(line)
        if section is not None:
            voice = section[1]
            continue
        entries.append(_entry(line, voice, where))
    return entries


def reads_names(language: str, phonemes: bool) -> bool:
    """Whether a voice takes the names lexicon: a Piper voice (it reads IPA) of US English,
    as CMUdict and the IPA are. Other voices read the names as they did."""
    return phonemes and language.replace("-", "_").lower() == "en_us"


@dataclass(frozen=True)
class Lexicon:
    """Every loaded entry, global and per voice. Immutable: reloading builds another."""

    entries: tuple[Entry, ...] = ()
    sources: tuple[str, ...] = ()
    """The files it was read from."""
    names: tuple[Entry, ...] = ()
    """The bundled names lexicon's entries: after all others, for voices that take them."""
    _voices: dict[tuple[str, bool], tuple[str, tuple[Entry | _Words, ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Per voice id and ``names``, made on first use: the digest and the matching steps."""

    def for_voice(self, voice: str, *, names: bool = False) -> tuple[Entry, ...]:
        """The entries that apply to ``voice``: its own first, then the global ones, then
        with ``names`` (:func:`reads_names`) the bundled names."""
        own = tuple(e for e in self.entries if e.voice == voice)
        shared = tuple(e for e in self.entries if e.voice == "*")
        return own + shared + (self.names if names else ())

    def digest(self, voice: str, *, names: bool = False) -> str:
        """A digest of the entries that apply to ``voice`` ('' when none do)."""
        return self._for(voice, names)[0]

    def apply(self, text: str, voice: str, *, names: bool = False) -> list[Segment]:
        """Split ``text`` at every entry's matches; the first entry to match a stretch wins."""
        segments = [Segment("text", text)]
        for step in self._for(voice, names)[1]:
            split = step.split if isinstance(step, _Words) else partial(_split, entry=step)
            segments = list(split(segments))
        return segments

    def _for(self, voice: str, names: bool) -> tuple[str, tuple[Entry | _Words, ...]]:
        known = self._voices.get((voice, names))
        if known is None:  # two threads may both make it: the same value either way
            entries = self.for_voice(voice, names=names)
            known = self._voices[voice, names] = (_digest(entries), _steps(entries))
        return known


def _digest(entries: Sequence[Entry]) -> str:
    if not entries:
        return ""
    # "\ti" for /.../i only, so that the digests of lexicons without one stay as they were.
    blob = "\n".join(
        f"{e.regex}\t{e.ipa}\t{e.voice}\t{e.key}\t{e.value}" + "\ti" * e.ignore_case
        for e in entries
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# A word entry whose key is all ASCII letters, digits and _ can only match a whole \w+ run
# of the text (its match is bounded by non-word characters, and so is every stretch taken
# before it), so a run of them is matched by looking each word of the text up.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_]+\Z")
_WORD_RUN = re.compile(r"\w+")
# The characters besides ASCII that a case-insensitive regular expression matches to an
# ASCII letter (İ ı to i, the Kelvin sign to k, long s to s; tests/test_text_lexicon.py
# checks the list against every code point).
_ASCII_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u212a": "k", "\u017f": "s"})


def _steps(entries: Sequence[Entry]) -> tuple[Entry | _Words, ...]:
    """``entries`` in order, each run of plain word entries made one :class:`_Words`."""
    steps: list[Entry | _Words] = []
    run: list[Entry] = []
    for entry in entries:
        if not entry.regex and _PLAIN_KEY.match(entry.key):
            run.append(entry)
            continue
        if run:
            steps.append(_Words.of(run))
            run = []
        steps.append(entry)
    if run:
        steps.append(_Words.of(run))
    return tuple(steps)


@dataclass(frozen=True)
class _Words:
    """Consecutive plain word entries, matched as their regular expressions one after the
    other would: for each word of the text, the first entry that matches it."""

    by_key: dict[str, tuple[Entry, ...]]
    """Lower-case key to the entries with that key, in order."""

    @classmethod
    def of(cls, entries: Sequence[Entry]) -> _Words:
        by_key: dict[str, list[Entry]] = {}
        for entry in entries:
            by_key.setdefault(entry.key.lower(), []).append(entry)
        return cls({key: tuple(same) for key, same in by_key.items()})

    def match(self, word: str) -> Entry | None:
        """The first entry whose key matches ``word`` (a whole \\w+ run), if any."""
        if word.isascii():
            folded = word.lower()
            for entry in self.by_key.get(folded, ()):
                # A key all in lower case matches any case (re.IGNORECASE), else exactly.
                if entry.key in (word, folded):
                    return entry
            return None
        # Rare: a word that folds to a key only through İ ı K ſ; its expression decides.
        for entry in self.by_key.get(word.translate(_ASCII_FOLD).lower(), ()):
            if entry.pattern.fullmatch(word):
                return entry
        return None

    def split(self, segments: Iterable[Segment]) -> Iterable[Segment]:
        for segment in segments:
            if segment.kind != "text":
                yield segment
                continue
            text, last = segment.value, 0
            for word in _WORD_RUN.finditer(text):
                entry = self.match(word[0])
                if entry is None:
                    continue
                if word.start() > last:
                    yield Segment("text", text[last : word.start()])
                yield Segment("phonemes" if entry.ipa else "words", entry.value)
                last = word.end()
            if last < len(text):
                yield Segment("text", text[last:])


def _split(segments: Iterable[Segment], entry: Entry) -> Iterable[Segment]:
    for segment in segments:
        if segment.kind != "text":
            yield segment
            continue
        last = 0
        for match in entry.pattern.finditer(segment.value):
            if match.end() == match.start():
                continue
            if match.start() > last:
                yield Segment("text", segment.value[last : match.start()])
            value = match.expand(entry.value) if entry.regex and not entry.ipa else entry.value
            yield Segment("phonemes" if entry.ipa else "words", value)
            last = match.end()
        if last < len(segment.value):
            yield Segment("text", segment.value[last:])


def load_lexicon(paths: Sequence[Path], *, names: Path | None = None) -> Lexicon:
    """Read lexicon files in order, and ``names`` (:data:`NAMES_LEXICON`) as the names;
    raises InvalidLexicon naming the file and line."""
    entries = [entry for path in paths for entry in _read(path)]
    bundled = tuple(_read(names)) if names is not None else ()
    return Lexicon(tuple(entries), tuple(str(p) for p in paths), bundled)


def _read(path: Path) -> list[Entry]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidLexicon(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB.")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidLexicon(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    except UnicodeDecodeError as exc:
        raise InvalidLexicon(f"{path}: not UTF-8 text ({exc.reason}).") from None
    return parse_lexicon(text, source=str(path))
