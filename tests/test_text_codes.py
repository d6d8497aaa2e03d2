"""Letter sequences and codes in the English frontend (voxserve/text/en_codes.py)."""

from __future__ import annotations

import pytest

from voxserve.text.en import normalize_en
from voxserve.text.en_codes import letters, paired, pronounceable

pytestmark = pytest.mark.inprocess


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        # acronyms: letters, unless said as a word
        ("The FBI called.", "The ef-bee-eye called."),
        ("Write HTML.", "Write aitch-tee-em-el."),
        ("NASA and NATO", "nasa and nato"),
        ("UNESCO", "yoonesco"),
        ("Enter your PIN.", "Enter your pin."),
        ("CEOs and PDFs", "see-ee-ohs and pee-dee-efs"),
        ("the OECD's report", "the oh-ee-see-dee's report"),
        ("WHO and USA", "double-you-aitch-oh and you-ess-eh"),
        ("IEEE", "eye-ee-ee-ee"),
        # left alone: word-shaped, emphasis, Roman numerals, OK, shouting; PM after a time
        ("ASAP", "ASAP"),
        ("do NOT go", "do NOT go"),
        ("World War II", "World War II"),
        ("at 3 PM", "at three pee-em"),
        ("It is OK.", "It is OK."),
        ("STOP THE CAR RIGHT NOW", "STOP THE CAR RIGHT NOW"),
        ("5 GB", "five gigabytes"),
        ("500 BC", "five hundred B C"),
        # flight numbers: letters, then the number in pairs
        ("Flight BA 2490 leaves.", "Flight bee-eh twenty-four ninety leaves."),
        ("flight DL 1005", "flight dee-el ten oh five"),
        ("flight U2 814", "flight you two eight fourteen"),
        ("flight AA100", "flight eh-eh one hundred"),
        # room, gate, bus numbers in pairs
        ("room 305", "room three oh five"),
        ("Room 1204", "Room twelve oh four"),
        ("bus 101", "bus one oh one"),
        ("platform 2400", "platform twenty-four hundred"),
        ("room 12", "room twelve"),
        # codes of capitals and digits
        ("room 4B", "room four bee"),
        ("gate B12", "gate bee twelve"),
        ("seat 14C", "seat fourteen see"),
        ("Your code is XKQ7PD.", "Your code is ex-kay-cue seven pee-dee."),
        ("MP3 files", "em-pee three files"),
        ("a PS5", "a pee-ess five"),
        ("COVID-19", "covid nineteen"),
        ("SN-4471-QX", "ess-en forty-four seventy-one cue-ex"),
        ("the A320", "the eh three twenty"),
        ("ID A1234567", "eye-dee eh one two three four five six seven"),
        # reference numbers digit by digit
        ("PIN 4071", "pin four zero seven one"),
        ("order #58213", "order number five eight two one three"),
        ("account number 001234", "account number zero zero one two three four"),
        ("number 12345", "number one two three four five"),
        # numbers that are quantities stay quantities
        ("No. 5", "number five"),
        ("1234 people", "twelve thirty-four people"),
        ("code 12", "code twelve"),
        ("in case 2020 was bad", "in case twenty twenty was bad"),
        ("ticket 4071", "ticket four thousand seventy-one"),
        ("ticket number 4071", "ticket number four zero seven one"),
        ("order: 4071", "order: four zero seven one"),
    ],
)
def test_codes_are_read_as_people_read_them(written: str, spoken: str) -> None:
    assert normalize_en(written) == spoken


@pytest.mark.parametrize(
    ("number", "spoken"),
    [
        ("7", "seven"),
        ("12", "twelve"),
        ("305", "three oh five"),
        ("490", "four ninety"),
        ("100", "one hundred"),
        ("2490", "twenty-four ninety"),
        ("1005", "ten oh five"),
        ("2400", "twenty-four hundred"),
        ("2000", "two thousand"),
        ("07", "zero seven"),
        ("12345", "one two three four five"),
    ],
)
def test_paired(number: str, spoken: str) -> None:
    assert paired(number) == spoken


@pytest.mark.parametrize("word", ["NASA", "UNESCO", "NAFTA", "STOP", "WARNING", "ASAP", "SCUBA"])
def test_word_shaped_acronyms_are_pronounceable(word: str) -> None:
    assert pronounceable(word)


@pytest.mark.parametrize(
    "word", ["HTML", "OECD", "NYPD", "ESPN", "ISBN", "HTTP", "RSVP", "JSON", "USDA", "FBI"]
)
def test_letter_acronyms_are_not_pronounceable(word: str) -> None:
    assert not pronounceable(word)


def test_letters_names_each_letter_as_espeak_says_it() -> None:
    assert letters("FBI") == "ef-bee-eye"
    assert letters("AW") == "eh-double-you"
    assert letters("PDF", plural=True) == "pee-dee-efs"
    assert letters("XS", plural=True) == "ex-esses"


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Her ID number is 48213.", "Her eye-dee number is four eight two one three."),
        ("her PIN is 7716", "her pin is seven seven one six"),
        ("the code was 4412", "the code was four four one two"),
        ("the number is 12345", "the number is one two three four five"),
        ("the ticket was 2020", "the ticket was twenty twenty"),
        ("Call 555-0142 now.", "Call five five five, zero one four two now."),
        ("from 150-2000 meters", "from one hundred fifty to two thousand meters"),
        ("pages 300-1000", "pages three hundred to one thousand"),
        ("at 7:15 am", "at seven fifteen eh-em"),
    ],
)
def test_codes_after_is_local_phone_numbers_and_am_by_its_letters(
    written: str, spoken: str
) -> None:
    """Round-trip fixes (tests/test_roundtrip_speech.py): "PIN is 7716" was a quantity,
    "555-0142" a range, "seven fifteen AM" heard "seven fifty NAM"."""
    assert normalize_en(written) == spoken
