"""Per-language text normalization behind one entry point.

`normalize` sanitizes any text, then runs the normalizer of its language, picked by the
language prefix of a voice's language code ("en_US", "en-GB" and "en" are English).
Languages without a normalizer are only sanitized: their digits stay for espeak-ng,
which knows how that language reads numbers.

The registry is a read-only mapping built by `default_normalizers`; pass another one
to `normalize` to add or replace a language, instead of mutating shared state.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from voxserve.text.clean import sanitize
from voxserve.text.en import normalize_en

__all__ = ["Normalizer", "default_normalizers", "language_prefix", "normalize"]


class Normalizer(Protocol):
    """Turns sanitized text of one language into the words a reader would say."""

    def __call__(self, text: str) -> str:
        """Return ``text`` with numbers, symbols and abbreviations written out."""
        ...


def default_normalizers() -> Mapping[str, Normalizer]:
    """The normalizers voxserve ships, keyed by lower-case language prefix ("en")."""
    return MappingProxyType({"en": normalize_en})


def language_prefix(language: str) -> str:
    """The language part of a locale code: "en_US", "en-GB" and "EN" all give "en"."""
    return language.replace("-", "_").split("_", 1)[0].strip().lower()


def normalize(
    text: str,
    language: str = "en",
    *,
    normalizers: Mapping[str, Normalizer] | None = None,
) -> str:
    """Sanitize ``text`` and normalize it for ``language``.

    Args:
        text: Any text, as the client sent it.
        language: A language or locale code such as "en", "en_US" or "de-DE".
        normalizers: Language prefix to normalizer; `default_normalizers` when None.

    Returns:
        The text ready for sentence splitting and phonemization. It may be empty if
        nothing speakable was left; the caller decides whether that is an error.
    """
    cleaned = sanitize(text)
    table = default_normalizers() if normalizers is None else normalizers
    normalizer = table.get(language_prefix(language))
    return cleaned if normalizer is None else normalizer(cleaned)
