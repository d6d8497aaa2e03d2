"""Word error rate of a transcript: does synthesized speech say the right words?

:func:`word_error_rate` compares what a recognizer heard (:mod:`voxserve.asr`) with the
text that was asked for. It needs the ``eval`` extra (jiwer, whisper-normalizer):
``pip install 'voxserve[eval]'``. The tests' judge (``tests/asr.py``), the benchmarks and
``voxserve quantize``'s report use it::

    heard = judge.transcribe(audio, rate)
    assert word_error_rate("three dollars and fifty cents", heard) < 0.1

Write references the way a person would say them, in words; Whisper answers in digits
and symbols ("$3.50", "November 24, 2026"). Both sides go through Whisper's own
``EnglishTextNormalizer``, which maps spoken numbers, currency, years and percentages to
one digit form: "three dollars and fifty cents" and "$3.50" both become ``$3.50``. It
turns "twenty-fourth" into ``24th`` but leaves Whisper's "24" alone, so :func:`normalize`
also drops ordinal suffixes after digits ("24th" -> "24", "first" -> "1") on both sides.

Known gaps, measured with whisper-normalizer 0.1.15 (avoid them in references, or write
the reference the way the normalizer leaves it):

- clock times: "ten thirty" -> ``1030`` but "10:30" -> ``10 30``;
- "six o'clock" -> ``60 clock`` on both sides (equal, just odd);
- decimals: "one point five" and "1.5" -> ``one.5`` (equal);
- "24/7" -> ``24 7`` but "twenty-four seven" -> ``247``;
- "OK" -> ``ok`` but "okay" -> ``okay``;
- "St." -> ``saint`` (never "street"); "Dr." -> ``doctor``, "Mr." -> ``mister``.

Measured on the 2-core x86_64 dev machine (faster-whisper 1.2.1, ctranslate2 4.8.5,
whisper-normalizer 0.1.15, Piper voice en_US-joe-medium), greedy decoding:

- ``Transcriber()`` 0.3-0.9 s; ``transcribe`` 0.4-0.7 s per clip whether it lasts 2.5 s or
  7.5 s (Whisper always encodes a 30 s window), up to ~1.6 s when other jobs share the CPU.
  Silence or noise costs the same ~0.35 s.
- WER of Piper speech: over 40 runs of the 8 sentences in ``tests/test_asr_harness.py``
  the per-run mean was 0-5.7 % (average 1.9 %). Piper samples noise, so every run differs;
  numbers, currency, dates and years never failed, the errors were near-homophones
  ("lives at forty-two Elm" -> "lies at 42 owned", "outdoor" -> "outboard",
  "passed" -> "pass").
- A sentence's audio judged against another sentence's text: WER 0.89 or more.
- Silence and white noise transcribe to an empty string (beam 5 heard "You" in noise).
"""

from __future__ import annotations

import functools
import re
from typing import Any

_MISSING = "{name} is missing: word error rates need the eval extra: pip install 'voxserve[eval]'"

# "24th" -> "24": Whisper writes a spoken "twenty-fourth" in a date as "24", which the
# normalizer leaves alone, while the reference's "twenty-fourth" becomes "24th".
_ORDINAL_SUFFIX = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")


def normalize(text: str) -> str:
    """Return ``text`` in the form :func:`word_error_rate` compares.

    Whisper's ``EnglishTextNormalizer``, then ordinal suffixes dropped from digits.
    """
    return " ".join(_ORDINAL_SUFFIX.sub(r"\1", _english_normalizer()(text)).split())


@functools.cache
def _english_normalizer() -> Any:
    try:
        from whisper_normalizer.english import EnglishTextNormalizer
    except ImportError as exc:
        raise ImportError(_MISSING.format(name=exc.name)) from exc
    return EnglishTextNormalizer()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after normalizing both.

    0.0 is a perfect match; 1.0 is as many errors as reference words (it can exceed 1.0
    when the hypothesis inserts words). An empty reference gives 0.0 for an empty
    hypothesis and 1.0 otherwise, since jiwer refuses an empty reference.
    """
    try:
        import jiwer
    except ImportError as exc:
        raise ImportError(_MISSING.format(name=exc.name)) from exc
    ref = normalize(reference)
    hyp = normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))
