"""English normalization and the per-language `normalize` entry point."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxserve.text import Normalizer, default_normalizers, language_prefix, normalize
from voxserve.text.en import normalize_en
from voxserve.text.numbers import cardinal, year

pytestmark = pytest.mark.inprocess


CASES = [
    # URLs and e-mail addresses
    ("example.com/docs", "example dot com slash docs"),
    ("a.b@x.org", "a dot b at x dot org"),
    (
        "Mail jane_doe42@mail.example.co.uk.",
        "Mail jane underscore doe four two at mail dot example dot co dot uk.",
    ),
    ("See https://example.com/a?b=1.", "See example dot com slash a question mark b equals one."),
    ("Go to www.python.org now", "Go to w w w dot python dot org now"),
    # money
    ("$3.50", "three dollars and fifty cents"),
    ("$1", "one dollar"),
    ("€2.05", "two euros and five cents"),
    ("£1.5 million", "one point five million pounds"),
    ("$0.99", "ninety-nine cents"),
    ("£0.01", "one penny"),
    ("£2.50", "two pounds and fifty pence"),
    ("$1,234.56", "one thousand two hundred thirty-four dollars and fifty-six cents"),
    ("$3.5", "three dollars and fifty cents"),
    ("$2 billion", "two billion dollars"),
    ("$5k", "five thousand dollars"),
    ("$1.5bn", "one point five billion dollars"),
    ("-$5", "minus five dollars"),
    ("5€", "five euros"),
    ("50¢", "fifty cents"),
    ("It costs $5. Then", "It costs five dollars. Then"),
    # percentages
    ("12.5%", "twelve point five percent"),
    ("Sales rose 12 %.", "Sales rose twelve percent."),
    ("10-20%", "ten to twenty percent"),
    # dates
    ("2026-11-24", "November twenty-fourth, twenty twenty-six"),
    ("24 November 2026", "the twenty-fourth of November twenty twenty-six"),
    ("November 24, 2026", "November twenty-fourth, twenty twenty-six"),
    ("Nov. 24th", "November twenty-fourth"),
    ("March 3rd, 2020", "March third, twenty twenty"),
    ("on 5 May", "on the fifth of May"),
    ("on 5 Nov. We left", "on the fifth of November. We left"),
    ("Jan 2026", "January twenty twenty-six"),
    # times
    ("3:30 pm", "three thirty pee-em"),
    ("15:05", "fifteen oh five"),
    ("9:00 am", "nine eh-em"),
    ("12:00", "twelve o'clock"),
    ("18:00", "eighteen hundred"),
    ("10:15:30", "ten fifteen and thirty seconds"),
    ("Meet at 9am.", "Meet at nine eh-em."),
    ("at 5 p.m. Then we ate", "at five pee-em. Then we ate"),
    ("3:30-4:30", "three thirty to four thirty"),
    # ordinals, decades and years
    ("1st 2nd 3rd 21st", "first second third twenty-first"),
    ("the 100th time", "the one hundredth time"),
    ("in 1999", "in nineteen ninety-nine"),
    ("in 2005 and 1900", "in two thousand five and nineteen hundred"),
    ("Since 2026, we", "Since twenty twenty-six, we"),
    ("the 1990s and the '80s", "the nineteen nineties and the eighties"),
    ("300 BC", "three hundred B C"),
    ("In 44 B.C. Caesar died", "In forty-four B C. Caesar died"),
    # phone numbers
    ("555-123-4567", "five five five, one two three, four five six seven"),
    ("+1 555 123 4567", "plus one, five five five, one two three, four five six seven"),
    ("(555) 123-4567", "five five five, one two three, four five six seven"),
    ("+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"),
    # plain numbers
    ("1,234,567", "one million two hundred thirty-four thousand five hundred sixty-seven"),
    ("3.14", "three point one four"),
    ("-5", "minus five"),
    ("x = -0.5", "x equals minus zero point five"),
    ("10-20", "ten to twenty"),
    ("pages 10–20", "pages ten to twenty"),
    ("ISBN 978-3-16", "eye-ess-bee-en nine hundred seventy-eight-three-sixteen"),
    ("version 1.2.3", "version one dot two dot three"),
    ("A4 paper", "eh four paper"),
    ("Bond, agent 007", "Bond, agent zero zero seven"),
    ("I have 42 apples.", "I have forty-two apples."),
    # units
    ("-3.2°C", "minus three point two degrees Celsius"),
    ("1°C", "one degree Celsius"),
    ("98.6 °F", "ninety-eight point six degrees Fahrenheit"),
    ("90°", "ninety degrees"),
    ("1 km", "one kilometer"),
    ("5 kg", "five kilograms"),
    ("0.5 kg", "zero point five kilograms"),
    ("2 m", "two meters"),
    ("8cm", "eight centimeters"),
    ("7 mm", "seven millimeters"),
    ("1 g and 3 mg", "one gram and three milligrams"),
    ("1 lb", "one pound"),
    ("5 lbs", "five pounds"),
    ("60 mph", "sixty miles per hour"),
    ("100 km/h", "one hundred kilometers per hour"),
    ("250 ms", "two hundred fifty milliseconds"),
    ("1 s", "one second"),
    ("30 min", "thirty minutes"),
    ("2 h", "two hours"),
    ("16 GB", "sixteen gigabytes"),
    ("1 MB", "one megabyte"),
    ("4 kB", "four kilobytes"),
    ("440 Hz", "four hundred forty hertz"),
    ("44.1 kHz", "forty-four point one kilohertz"),
    ("250 mL", "two hundred fifty milliliters"),
    ("1 L", "one liter"),
    ("10-20 km", "ten to twenty kilometers"),
    ("~5 km", "about five kilometers"),
    # abbreviations
    ("Dr. Smith", "Doctor Smith"),
    ("Mr. and Mrs. Jones met Ms. Lee.", "Mister and Missus Jones met Miz Lee."),
    ("Mr Brown", "Mister Brown"),
    ("St. Louis", "Saint Louis"),
    ("I live on Main St. Then I moved.", "I live on Main Street. Then I moved."),
    ("the 5th St. station", "the fifth Street station"),
    ("He lives on Elm Dr. near me", "He lives on Elm Drive near me"),
    ("John Smith Jr. and Sr.", "John Smith Junior and Senior."),
    ("Prof. Xu vs. Yang", "Professor Xu versus Yang"),
    ("fruit, e.g. apples, i.e. food", "fruit, for example apples, that is food"),
    ("apples, pears, etc. Then", "apples, pears, et cetera. Then"),
    ("apples, etc., pears", "apples, et cetera, pears"),
    ("approx. 5 kg", "approximately five kilograms"),
    ("No. 5", "number five"),
    ("No. I won't.", "No. I won't."),
    ("Mt. Everest", "Mount Everest"),
    ("5th Ave. and Sunset Blvd.", "fifth Avenue and Sunset Boulevard."),
    ("Apt. 4", "Apartment four"),
    # symbols
    ("R&D", "R and D"),
    ("1 + 1 = 2", "one plus one equals two"),
    ("C++", "C plus plus"),
    ("@home", "at home"),
    ("#1 fan", "number one fan"),
    ("and/or", "and slash or"),
    ("40° angle", "forty degrees angle"),
    ("© 2020 Acme™", "copyright twenty twenty Acme trademark"),
    ("3×4", "three times four"),
    ("±2", "plus or minus two"),
    # other scripts' digits are numbers too
    ("٤٢ apples", "forty-two apples"),
    ("１２３", "one hundred twenty-three"),
    # text with nothing to do passes through
    ("Hello, world! How are you?", "Hello, world! How are you?"),
    ("U.S. policy", "U.S. policy"),
]


@pytest.mark.parametrize(("written", "spoken"), CASES)
def test_normalize_en(written: str, spoken: str) -> None:
    assert normalize_en(written) == spoken


def test_normalize_en_reads_a_whole_sentence() -> None:
    text = "Dr. Smith paid $3.50 on 2026-11-24 at 3:30 pm; it was 12.5% off."
    assert normalize_en(text) == (
        "Doctor Smith paid three dollars and fifty cents on November twenty-fourth, "
        "twenty twenty-six at three thirty pee-em; it was twelve point five percent off."
    )


def test_normalize_en_keeps_paragraph_breaks() -> None:
    assert normalize_en("Item 1.\nItem 2.") == "Item one.\nItem two."


@pytest.mark.parametrize("language", ["en", "en_US", "en-GB", "EN", "en_us"])
def test_normalize_reads_english_for_every_english_locale(language: str) -> None:
    assert normalize("I have\t2 cats 😀.", language) == "I have two cats."


@pytest.mark.parametrize("language", ["de", "fr-FR", "es_ES", "zh", ""])
def test_normalize_leaves_digits_of_other_languages_to_espeak(language: str) -> None:
    assert normalize("Ich habe  2 Katzen\x00 😀.", language) == "Ich habe 2 Katzen."


def test_normalize_uses_the_normalizers_it_is_given() -> None:
    def shout(text: str) -> str:
        return text.upper()

    normalizers: Mapping[str, Normalizer] = MappingProxyType({"de": shout})
    assert normalize("  drei\x07 ", "de_DE", normalizers=normalizers) == "DREI"
    # English is not in that table, so English text is only sanitized.
    assert normalize("2 cats", "en", normalizers=normalizers) == "2 cats"


def test_default_normalizers_cannot_be_mutated() -> None:
    normalizers = default_normalizers()
    assert set(normalizers) == {"en"}
    with pytest.raises(TypeError):
        normalizers["xx"] = normalize_en  # type: ignore[index]


@pytest.mark.parametrize(
    ("language", "prefix"),
    [("en_US", "en"), ("en-GB", "en"), ("EN", "en"), ("pt_BR", "pt"), ("", "")],
)
def test_language_prefix(language: str, prefix: str) -> None:
    assert language_prefix(language) == prefix


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalize_never_raises_and_leaves_no_digit(text: str) -> None:
    spoken = normalize(text)
    assert not re.search(r"\d", spoken)
    assert isinstance(normalize_en(text), str)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789 .,-–:/+$€£%°#~", min_size=1))
def test_numbers_and_separators_are_all_read(text: str) -> None:
    spoken = normalize(text)
    assert not re.search(r"\d", spoken)
    if any(ch.isdigit() for ch in text):
        assert spoken


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_a_plain_integer_reads_as_its_cardinal_or_year(n: int) -> None:
    assert normalize(str(n)) in {cardinal(n), year(n)}


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1000, max_value=10**15))
def test_thousands_separators_read_as_the_same_number(n: int) -> None:
    assert normalize(f"{n:,}") == cardinal(n)


@settings(max_examples=200, deadline=None)
@given(
    # Letters that spell no abbreviation ("cf.", "etc.") and no web address.
    st.lists(st.text(alphabet="hklmopquwxyz", min_size=1, max_size=6), min_size=1, max_size=8),
    st.sampled_from([".", "?", "!", ";", ":", ","]),
)
def test_sentence_punctuation_survives(words: list[str], mark: str) -> None:
    text = " ".join(words) + mark
    assert normalize(text) == text
