"""XML that a client or a file hands in, parsed by expat with nothing expanded or fetched.

SSML documents (voxserve.text.ssml) and PLS lexicons (voxserve.text.pls) both come from
outside, so both refuse what the XML attacks need: a document type declaration (billion
laughs, external DTDs), entity declarations, external entities and undefined entities;
parameter entities are never parsed. Each format bounds its own depth and sizes in its
handlers, which stop the parse by raising :class:`Refused` (from :func:`refusal`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.parsers import expat

Describe = Callable[[int, int, str], str]
"""Makes the message of a refusal from its line, column (from 1) and what is wrong."""


class Refused(Exception):
    """The document is refused; the message says where and why."""


def refusal(parser: expat.XMLParserType, describe: Describe, what: str) -> Refused:
    """A Refused at the parser's position, for a handler to raise."""
    return Refused(describe(parser.CurrentLineNumber, parser.CurrentColumnNumber + 1, what))


def parse(
    document: str | bytes,
    parser: expat.XMLParserType,
    describe: Describe,
    *,
    start: Callable[[str, dict[str, str]], None],
    end: Callable[[str], None],
    text: Callable[[str], None],
) -> None:
    """Parse ``document`` with ``parser`` (from :func:`new_parser`) and the element and
    text handlers; raises Refused for anything refused or malformed."""

    def refuse(what: str) -> Callable[..., Any]:
        def handler(*_: object) -> Any:
            raise refusal(parser, describe, what)

        return handler

    def undefined(name: str, *_: object) -> None:
        known = "&amp; &lt; &gt; &quot; &apos;"
        raise refusal(parser, describe, f"the entity &{name}; is not defined (only {known}).")

    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = refuse(
        "a document type declaration (<!DOCTYPE>) is not allowed."
    )
    parser.EntityDeclHandler = refuse("entity declarations are not allowed.")
    parser.UnparsedEntityDeclHandler = refuse("entity declarations are not allowed.")
    parser.ExternalEntityRefHandler = refuse("external entities are not allowed.")
    parser.SkippedEntityHandler = undefined
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.buffer_text = True
    try:
        parser.Parse(document, True)
    except expat.ExpatError as exc:
        message = expat.errors.messages.get(exc.code, str(exc)) if exc.code else str(exc)
        raise Refused(describe(exc.lineno, exc.offset + 1, f"{message}.")) from None


def new_parser() -> expat.XMLParserType:
    """An expat parser that reports namespaced names as ``"URI local"``."""
    return expat.ParserCreate(namespace_separator=" ")
