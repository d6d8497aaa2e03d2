"""The issue's quality bar: a round trip text -> voxserve -> Whisper tiny.en -> text on
sentences full of numbers, money, dates, times, units, names and codes, with the default
voice and lexicon (only the bundled names, docs/lexicon.md), scored against how a careful
reader says each sentence.

Every sentence is spoken twice with noise 0 (the same audio every run): through
:class:`~voxserve.Synthesizer`, what users get, and by the bare Piper voice on the written
text (espeak-ng's own rules only), the baseline. tests/judge.py scores the speech, not
Whisper's way of writing it. ``pytest tests/test_roundtrip_speech.py -s`` prints every
sentence's score and what was heard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pytest

from judge import score
from voxserve import SynthesisParams, Synthesizer

if TYPE_CHECKING:
    from asr import Transcriber

pytestmark = pytest.mark.slow

QUIET = SynthesisParams(noise_scale=0, noise_w=0)

#: (text as written, the same text as a careful reader says it)
CASES = (
    ("Dr. Patel paid $3.50 for 2 coffees.",
     "Doctor Patel paid three dollars and fifty cents for two coffees."),
    ("The invoice of $1,249.99 is due on March 3, 2027.",
     "The invoice of one thousand two hundred forty-nine dollars and ninety-nine cents is "
     "due on March third, twenty twenty-seven."),
    ("Ms. Garcia flew 2,500 miles in 6 hours.",
     "Ms. Garcia flew two thousand five hundred miles in six hours."),
    ("The box weighs 12.5 kg and is 40 cm wide.",
     "The box weighs twelve point five kilograms and is forty centimeters wide."),
    ("Call Mr. Kowalski at 555-0142 before 5 pm.",
     "Call Mister Kowalski at five five five, zero one four two before five p.m."),
    ("Prices rose 7% in 2023 and fell 2.5% in 2024.",
     "Prices rose seven percent in twenty twenty-three and fell two point five percent in "
     "twenty twenty-four."),
    ("Flight UA 837 leaves from gate C22 at 7:15 am.",
     "Flight U A eight thirty-seven leaves from gate C twenty-two at seven fifteen a.m."),
    ("Professor Nakamura has 3 PhD students and 1 postdoc.",
     "Professor Nakamura has three P H D students and one postdoc."),
    ("The 21st century began on January 1, 2001.",
     "The twenty-first century began on January first, two thousand one."),
    ("She ran the 100 m sprint in 11.2 seconds.",
     "She ran the one hundred meter sprint in eleven point two seconds."),
    ("Mrs. O'Brien lives at 42 Elm St., apartment 7B.",
     "Missus O'Brien lives at forty-two Elm Street, apartment seven B."),
    ("The CEO earned €2.4 million last year.",
     "The C E O earned two point four million euros last year."),
    ("Our Wi-Fi password is TQ84XZ.", "Our Wi-Fi password is T Q eight four X Z."),
    ("The temperature dropped to -5 °C overnight.",
     "The temperature dropped to minus five degrees Celsius overnight."),
    ("Dr. Schmidt sees 15 patients a day, 5 days a week.",
     "Doctor Schmidt sees fifteen patients a day, five days a week."),
    ("Order 3 pizzas for £18 each.", "Order three pizzas for eighteen pounds each."),
    ("The train to Boston departs at 6:45 pm from track 9.",
     "The train to Boston departs at six forty-five p.m. from track nine."),
    ("Room 1204 is on the 12th floor.", "Room twelve oh four is on the twelfth floor."),
    ("Her ID number is 48213 and her PIN is 7716.",
     "Her I D number is four eight two one three and her PIN is seven seven one six."),
    ("The USB stick holds 64 GB of data.",
     "The U S B stick holds sixty-four gigabytes of data."),
    ("Lieutenant Johnson served from 1998 to 2012.",
     "Lieutenant Johnson served from nineteen ninety-eight to twenty twelve."),
    ("The recipe needs 250 g of flour and 2 eggs.",
     "The recipe needs two hundred fifty grams of flour and two eggs."),
    ("Gate B7 closes 20 minutes before departure.",
     "Gate B seven closes twenty minutes before departure."),
    ("The rent went from $900 to $1,150 a month.",
     "The rent went from nine hundred dollars to one thousand one hundred fifty dollars a "
     "month."),
    ("We met on Friday, June 14th, at 10 am.", "We met on Friday, June fourteenth, at ten a.m."),
    ("The car does 0 to 60 mph in 4.2 seconds.",
     "The car does zero to sixty miles per hour in four point two seconds."),
    ("Mr. Murphy and Ms. Chen signed 3 contracts.",
     "Mister Murphy and Ms. Chen signed three contracts."),
    ("The BBC reported a 3.2 magnitude quake at 2:10 am.",
     "The B B C reported a three point two magnitude quake at two ten a.m."),
    ("Bus 47 stops at 5th Avenue every 12 minutes.",
     "Bus forty-seven stops at Fifth Avenue every twelve minutes."),
    ("The file is 3.7 MB and the video is 1.2 GB.",
     "The file is three point seven megabytes and the video is one point two gigabytes."),
)  # fmt: skip

TARGET_WER = 0.03
"""The issue's target for the mean word error rate over CASES with the default voice."""

MAX_MEAN_WER = 0.08
"""The bound kept today: measured 0.0575 before the rules of this round (AM/PM by their
letters' names, local phone numbers, "PIN is 7716" digit by digit) and 0.0650 after, the
bare Piper voice 0.1273. The after figure is higher on two sentences whose reading was
corrected: "her PIN is seven seven one six" is heard "777-16" where the quantity "seven
thousand seven hundred sixteen" was heard "7,716", which the judge takes for the same
digits; and "five five five, zero one four two" for "555-0142" (it was "five hundred
fifty-five to ...") changed that sentence's prosody, and "Kowalski" was heard "Call
Skiet". What remains is names ("Ms. Garcia" heard "Miskar Sea of"), a long sentence
without a comma ("rose" heard "row", "fell two" "Feltie"), Whisper's "Z" heard as "C",
"UA 837" heard "U8-837". 0.08 fails when two more sentences lose a word.

With the bundled names lexicon (CMUdict's readings of the names espeak-ng misreads,
docs/lexicon.md): 0.0597. "Kowalski" is heard right ("Call Mister Kowalski at ...": 0.25
to 0); "Nakamura", now stressed on its third syllable as CMUdict has it (espeak-ng said
"nak-a-MYUR-a"), is heard "Nacomor" (0 to 0.09). "Garcia" is not in the names lexicon:
espeak-ng already reads it as CMUdict does.
"""


@dataclass(frozen=True)
class Heard:
    text: str
    reference: str
    heard: str
    """What Whisper heard from voxserve's speech."""
    bare: str
    """What Whisper heard from the bare Piper voice reading the written text."""

    @property
    def wer(self) -> float:
        return score(self.reference, self.heard)

    @property
    def bare_wer(self) -> float:
        return score(self.reference, self.bare)


@pytest.fixture(scope="module")
def heard(piper_synth: Synthesizer, transcriber: Transcriber) -> list[Heard]:
    return [
        Heard(
            text,
            reference,
            transcriber.hear(piper_synth, text, QUIET),
            transcriber.hear_bare(piper_synth, text, QUIET),
        )
        for text, reference in CASES
    ]


def report(results: list[Heard]) -> str:
    lines = [f"{h.wer:.3f} (bare {h.bare_wer:.3f}) {h.text!r}: heard {h.heard!r}" for h in results]
    mean = np.mean([h.wer for h in results])
    bare = np.mean([h.bare_wer for h in results])
    return "\n".join([*lines, f"mean WER {mean:.4f}, bare Piper {bare:.4f}"])


def test_numbers_money_dates_units_names_and_codes_are_understood(heard: list[Heard]) -> None:
    print(report(heard))
    mean = float(np.mean([h.wer for h in heard]))
    assert mean <= MAX_MEAN_WER, report(heard)
    # The text rules, not the voice alone, make these sentences understood.
    assert float(np.mean([h.bare_wer for h in heard])) > 1.8 * mean, report(heard)


@pytest.mark.xfail(
    strict=True, reason="issue 15's target of 3 % is not reached (0.060): see MAX_MEAN_WER"
)
def test_the_issues_target_is_reached(heard: list[Heard]) -> None:
    assert float(np.mean([h.wer for h in heard])) <= TARGET_WER, report(heard)
