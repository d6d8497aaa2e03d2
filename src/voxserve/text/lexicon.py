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
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from voxserve.errors import InvalidLexicon

__all__ = ["Entry", "Lexicon", "Segment", "load_lexicon", "parse_lexicon"]

#: Longest lexicon file, in bytes.
MAX_FILE_BYTES = 4 * 1024 * 1024
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
    pattern: re.Pattern[str] = field(compare=False, repr=False, default=re.compile(""))
    """The compiled matcher (a whole-word match for a word)."""


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
    ignore_case = bool(regex and match["flags"])
    pattern = _compile(key, regex=regex, ignore_case=ignore_case, where=where)
    return Entry(key, value, ipa, regex, voice, where, pattern)


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


@dataclass(frozen=True)
class Lexicon:
    """Every loaded entry, global and per voice. Immutable: reloading builds another."""

    entries: tuple[Entry, ...] = ()
    sources: tuple[str, ...] = ()
    """The files it was read from."""

    def for_voice(self, voice: str) -> tuple[Entry, ...]:
        """The entries that apply to ``voice``: its own first, then the global ones."""
        own = tuple(e for e in self.entries if e.voice == voice)
        return own + tuple(e for e in self.entries if e.voice == "*")

    def digest(self, voice: str) -> str:
        """A digest of the entries that apply to ``voice`` ('' when none do)."""
        entries = self.for_voice(voice)
        if not entries:
            return ""
        blob = "\n".join(f"{e.regex}\t{e.ipa}\t{e.voice}\t{e.key}\t{e.value}" for e in entries)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def apply(self, text: str, voice: str) -> list[Segment]:
        """Split ``text`` at every entry's matches; the first entry to match a stretch wins."""
        segments = [Segment("text", text)]
        for entry in self.for_voice(voice):
            segments = list(_split(segments, entry))
        return segments


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


def load_lexicon(paths: Sequence[Path]) -> Lexicon:
    """Read lexicon files in order; raises InvalidLexicon naming the file and line."""
    entries: list[Entry] = []
    for path in paths:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise InvalidLexicon(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB.")
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidLexicon(f"{path}: cannot be read ({exc.strerror or exc}).") from None
        except UnicodeDecodeError as exc:
            raise InvalidLexicon(f"{path}: not UTF-8 text ({exc.reason}).") from None
        entries.extend(parse_lexicon(text, source=str(path)))
    return Lexicon(tuple(entries), tuple(str(p) for p in paths))
