"""Text frontend: clean, normalize and split text before it reaches a voice.

The usual path is ``split_sentences(normalize(text, voice_language))``.
"""

from __future__ import annotations

from voxserve.text.clean import sanitize
from voxserve.text.en import normalize_en
from voxserve.text.normalize import Normalizer, default_normalizers, language_prefix, normalize
from voxserve.text.numbers import cardinal, decimal, digits, integer_words, ordinal, year
from voxserve.text.split import split_sentences

__all__ = [
    "Normalizer",
    "cardinal",
    "decimal",
    "default_normalizers",
    "digits",
    "integer_words",
    "language_prefix",
    "normalize",
    "normalize_en",
    "ordinal",
    "sanitize",
    "split_sentences",
    "year",
]
