"""Round trip of letter sequences and codes: text -> voxserve -> Whisper tiny.en -> text.

Acronyms, flight, room and gate numbers, PINs and booking codes (docs/ssml.md, "Text
normalization"), spoken by :class:`~voxserve.Synthesizer` with noise 0 and scored against
how a careful reader says each sentence, written out below.

Whisper writes letters said one by one as a capitalized word ("FBI", "XKQ7PD") or apart
("F-B-I", "F B I"); which it picks is its own style, not the speech. So both sides are
compared with every run of capitals split into its letters (and letters from digits)
before the word error rate, except the word acronyms that are said as words (NASA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pytest

from asr import word_error_rate
from judge import letters_apart as _letters_apart
from voxserve import SynthesisParams, Synthesizer

if TYPE_CHECKING:
    from asr import Transcriber

pytestmark = pytest.mark.slow

QUIET = SynthesisParams(noise_scale=0, noise_w=0)

#: (text as written, the same text as a careful reader says it)
CASES = (
    (
        "Flight BA 2490 to Lisbon boards at gate B12.",
        "Flight B A twenty-four ninety to Lisbon boards at gate B twelve.",
    ),
    (
        "The FBI sent the HTML report to NASA.",
        "The F B I sent the H T M L report to NASA.",
    ),
    (
        "Please meet me in room 4B, not in room 305.",
        "Please meet me in room four B, not in room three oh five.",
    ),
    ("Your booking code is XKQ7PD.", "Your booking code is X K Q seven P D."),
    (
        "Enter PIN 4071 for order number 58213.",
        "Enter PIN four zero seven one for order number five eight two one three.",
    ),
    (
        "UNESCO and the WHO met the CEO of IBM in the USA.",
        "UNESCO and the W H O met the C E O of I B M in the U S A.",
    ),
    (
        "The GPU runs an SQL query through the API.",
        "The G P U runs an S Q L query through the A P I.",
    ),
    (
        "Take bus 101 to terminal 2 for flight DL 1005.",
        "Take bus one oh one to terminal two for flight D L ten oh five.",
    ),
    (
        "The NATO summit and the OECD report were on the BBC.",
        "The NATO summit and the O E C D report were on the B B C.",
    ),
    (
        "Save the MP3 files and the PDFs to the USB drive.",
        "Save the M P three files and the P D Fs to the U S B drive.",
    ),
)

MAX_MEAN_WER = 0.03
"""Bound on the mean word error rate over CASES: the issue's 3 %.

Measured on these sentences (noise 0, so the same every run): 0.144 before the code and
acronym rules of voxserve/text/en_codes.py (per sentence 0.182 0 0 0 0.143 0.500 0.067
0.364 0.125 0.056: "BA 2490" heard "BA 200490", "DL 1005" "DL-105", "WHO" said as "who",
"UNESCO" as "Anesco", "58213" as "58230"), 0.005 after (one error: "and" heard "in").
0.03 fails when one sentence gains a 3-word error.
"""


def score(reference: str, heard: str) -> float:
    return word_error_rate(_letters_apart(reference), _letters_apart(heard))


@dataclass(frozen=True)
class Heard:
    text: str
    reference: str
    heard: str

    @property
    def wer(self) -> float:
        return score(self.reference, self.heard)


@pytest.fixture(scope="module")
def heard(piper_synth: Synthesizer, transcriber: Transcriber) -> list[Heard]:
    return [
        Heard(text, reference, transcriber.hear(piper_synth, text, QUIET))
        for text, reference in CASES
    ]


def report(results: list[Heard]) -> str:
    mean = np.mean([h.wer for h in results])
    lines = [f"{h.wer:.3f} {h.text!r}: heard {h.heard!r}" for h in results]
    return "\n".join([*lines, f"mean {mean:.3f}"])


def test_the_judge_splits_letters_but_not_words() -> None:
    assert _letters_apart("The F.B.I. and F-B-I and FBI") == "The F B I. and F B I and F B I"
    assert _letters_apart("XKQ7PD, NASA, PDFs, 2490, A") == "X K Q 7 P D, NASA, P D F s, 2490, A"
    assert _letters_apart("xkq7PD on the 24th, 1990s") == "X K Q 7 P D on the 24th, 1990s"
    assert _letters_apart("bus 100, 1-determinal 2") == "bus 100, 1-determinal 2"


def test_codes_and_letters_are_understood(heard: list[Heard]) -> None:
    mean = float(np.mean([h.wer for h in heard]))
    print(report(heard))
    assert mean <= MAX_MEAN_WER, report(heard)
    assert max(h.wer for h in heard) < 0.25, report(heard)
