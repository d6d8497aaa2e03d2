"""W3C Pronunciation Lexicon Specification (PLS 1.0) files to voxserve's lexicon format.

A PLS file lists lexemes, each with one or more ``<grapheme>`` (the written words) and a
pronunciation: ``<phoneme>`` (IPA here) or ``<alias>`` (words to say instead)::

    <lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
             alphabet="ipa" xml:lang="en-US">
      <lexeme><grapheme>Nguyen</grapheme><phoneme>wɪn</phoneme></lexeme>
      <lexeme><grapheme>W3C</grapheme><alias>World Wide Web Consortium</alias></lexeme>
    </lexicon>

:func:`parse_pls` reads one with the same hardened expat as SSML (voxserve.text.ssml: no
document type, no entity declared, nesting and size bounded) and :func:`to_lexicon`
writes the lines ``voxserve lexicon check`` reads (docs/lexicon.md). Of a lexeme's
pronunciations the one marked ``prefer="true"`` is taken, else the first; IPA loses its
syllable dots (voxserve's IPA may not hold ``.``). What cannot be written (another
alphabet, a grapheme with ``=`` or ``#``) is skipped with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.parsers import expat

from voxserve.errors import InvalidLexicon
from voxserve.text.xmlsafe import Refused, new_parser, parse, refusal

__all__ = ["MAX_PLS_BYTES", "Pronunciation", "parse_pls", "to_lexicon"]

#: Largest PLS file read, in bytes (as a lexicon file).
MAX_PLS_BYTES = 4 * 1024 * 1024
#: Deepest nesting a PLS file needs is 3 (lexicon, lexeme, grapheme); allow a little more.
MAX_DEPTH = 8
_IPA_DROPPED = str.maketrans("", "", ".")
_IPA_FORBIDDEN = frozenset("!?[]\n")


@dataclass(frozen=True)
class Pronunciation:
    """One grapheme and how to say it."""

    grapheme: str
    value: str
    """IPA, or the alias's words."""
    ipa: bool
    line: int
    """Where its lexeme starts in the file."""


class _Reader:
    def __init__(self, parser: expat.XMLParserType, source: str) -> None:
        self.parser = parser
        self.source = source
        self.stack: list[str] = []
        self.alphabet = "ipa"
        self.text: list[str] = []
        self.lexeme: dict[str, list[tuple[str, str, bool]]] | None = None
        self.lexeme_line = 0
        self.found: list[Pronunciation] = []
        self.skipped: list[str] = []
        self.attrs: dict[str, str] = {}

    def describe(self, line: int, column: int, what: str) -> str:
        return f"{self.source}: line {line}, column {column}: {what}"

    def fail(self, what: str) -> Refused:
        return refusal(self.parser, self.describe, what)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = name.rsplit(" ", 1)[-1]
        attrs = {k.rsplit(" ", 1)[-1]: v for k, v in attrs.items()}
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(f"elements nest more than {MAX_DEPTH} deep.")
        if not self.stack and tag != "lexicon":
            raise self.fail(f"the root element must be <lexicon>, not <{tag}>.")
        self.stack.append(tag)
        self.text = []
        self.attrs = attrs
        if tag == "lexicon":
            self.alphabet = attrs.get("alphabet", "ipa").strip().lower()
        elif tag == "lexeme":
            self.lexeme = {"grapheme": [], "say": []}
            self.lexeme_line = self.parser.CurrentLineNumber

    def data(self, text: str) -> None:
        self.text.append(text)

    def end(self, name: str) -> None:
        tag = self.stack.pop()
        text = " ".join("".join(self.text).split())
        self.text = []
        lexeme = self.lexeme
        if lexeme is None:
            return
        prefer = self.attrs.get("prefer", "false") == "true"
        if tag == "grapheme" and text:
            lexeme["grapheme"].append((text, "", False))
        elif tag == "alias" and text:
            lexeme["say"].append((text, "alias", prefer))
        elif tag == "phoneme" and text:
            alphabet = self.attrs.get("alphabet", self.alphabet).strip().lower()
            lexeme["say"].append((text, alphabet, prefer))
        elif tag == "lexeme":
            self._lexeme(lexeme)
            self.lexeme = None

    def _lexeme(self, lexeme: dict[str, list[tuple[str, str, bool]]]) -> None:
        where = f"{self.source}:{self.lexeme_line}"
        graphemes = [g for g, _, _ in lexeme["grapheme"]]
        says = lexeme["say"]
        if not graphemes or not says:
            self.skipped.append(f"{where}: a lexeme needs a grapheme and a phoneme or alias")
            return
        value, kind, _ = next((s for s in says if s[2]), says[0])
        if kind not in ("alias", "ipa"):
            self.skipped.append(f"{where}: {graphemes[0]!r}: alphabet {kind!r} (only ipa)")
            return
        if kind == "ipa":
            value = value.translate(_IPA_DROPPED).strip()
            if bad := sorted(set(value) & _IPA_FORBIDDEN):
                self.skipped.append(f"{where}: {graphemes[0]!r}: IPA with {' '.join(bad)!r}")
                return
        elif "#" in value:
            self.skipped.append(f"{where}: {graphemes[0]!r}: an alias with '#'")
            return
        for grapheme in graphemes:
            if "=" in grapheme or "#" in grapheme or grapheme[0] in "/[":
                self.skipped.append(f"{where}: {grapheme!r}: '=', '#', or a leading / or [")
                continue
            self.found.append(Pronunciation(grapheme, value, kind == "ipa", self.lexeme_line))


def parse_pls(document: bytes, *, source: str = "<pls>") -> tuple[list[Pronunciation], list[str]]:
    """The pronunciations of a PLS file, and what was skipped and why. Raises
    InvalidLexicon naming the line and column of anything refused or malformed."""
    if len(document) > MAX_PLS_BYTES:
        raise InvalidLexicon(f"{source}: {len(document)} bytes; the limit is {MAX_PLS_BYTES}.")
    parser = new_parser()
    reader = _Reader(parser, source)
    try:
        parse(
            document, parser, reader.describe, start=reader.start, end=reader.end, text=reader.data
        )
    except Refused as exc:
        raise InvalidLexicon(str(exc)) from None
    return reader.found, reader.skipped


def to_lexicon(pronunciations: list[Pronunciation], *, source: str = "") -> str:
    """voxserve lexicon lines (docs/lexicon.md), one per pronunciation."""
    head = f"# imported from {source}\n" if source else ""
    lines = [
        f"{p.grapheme} = {'[[' + p.value + ']]' if p.ipa else p.value}" for p in pronunciations
    ]
    return head + "".join(f"{line}\n" for line in lines)
