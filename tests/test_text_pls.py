"""W3C PLS lexicons to voxserve's format (voxserve/text/pls.py, voxserve lexicon import)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from voxserve.cli import main
from voxserve.errors import InvalidLexicon
from voxserve.text.lexicon import parse_lexicon
from voxserve.text.pls import parse_pls, to_lexicon

pytestmark = pytest.mark.inprocess

PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
         alphabet="ipa" xml:lang="en-US">
  <lexeme>
    <grapheme>Nguyen</grapheme>
    <phoneme>wɪn</phoneme>
  </lexeme>
  <lexeme>
    <grapheme>W3C</grapheme>
    <grapheme>w3c</grapheme>
    <alias>World Wide Web Consortium</alias>
  </lexeme>
  <lexeme>
    <grapheme>Siobhan</grapheme>
    <phoneme>ʃɪ.ˈvɔːn</phoneme>
    <phoneme prefer="true">ʃə.ˈvɔːn</phoneme>
  </lexeme>
  <lexeme>
    <grapheme>tomato</grapheme>
    <phoneme alphabet="x-sampa">t@"meItoU</phoneme>
  </lexeme>
  <lexeme><grapheme>a=b</grapheme><alias>a equals b</alias></lexeme>
  <lexeme><grapheme>empty</grapheme></lexeme>
</lexicon>
"""


def test_lexemes_become_lexicon_lines_the_server_reads() -> None:
    found, skipped = parse_pls(PLS.encode(), source="names.pls")
    text = to_lexicon(found, source="names.pls")
    assert text.splitlines() == [
        "# imported from names.pls",
        "Nguyen = [[wɪn]]",
        "W3C = World Wide Web Consortium",
        "w3c = World Wide Web Consortium",
        "Siobhan = [[ʃəˈvɔːn]]",  # the preferred one, its syllable dot dropped
    ]
    assert [e.key for e in parse_lexicon(text)] == ["Nguyen", "W3C", "w3c", "Siobhan"]
    assert len(skipped) == 3
    assert "'tomato': alphabet 'x-sampa'" in skipped[0]
    assert "'a=b'" in skipped[1]
    assert skipped[2].startswith("names.pls:23: a lexeme needs")


@pytest.mark.parametrize(
    ("document", "what"),
    [
        ('<!DOCTYPE lexicon [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
         "<lexicon><lexeme><grapheme>&b;</grapheme><alias>x</alias></lexeme></lexicon>",
         "document type declaration"),
        ('<!DOCTYPE lexicon SYSTEM "file:///etc/passwd"><lexicon/>', "document type declaration"),
        ("<lexicon>" + "<lexeme>" * 10_000, "nest more than 8"),
        ("<speak>hi</speak>", "root element must be <lexicon>"),
        ("<lexicon><lexeme>", "no element found"),
        ("<lexicon>&nbsp;</lexicon>", "undefined entity"),
    ],
    ids=["billion-laughs", "external-dtd", "deep", "not-pls", "truncated", "entity"],
)  # fmt: skip
def test_hostile_or_broken_xml_is_refused_fast_naming_where(document: str, what: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidLexicon, match=what) as refused:
        parse_pls(document.encode(), source="bad.pls")
    assert time.perf_counter() - started < 0.5
    assert refused.value.message.startswith("bad.pls: line ")


def test_a_file_over_the_limit_is_refused() -> None:
    with pytest.raises(InvalidLexicon, match="the limit is"):
        parse_pls(b" " * (4 * 1024 * 1024 + 1))


def test_voxserve_lexicon_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pls = tmp_path / "names.pls"
    pls.write_text(PLS, encoding="utf-8")
    out = tmp_path / "names.txt"
    assert main(["lexicon", "import", str(pls), "-o", str(out)]) == 0
    assert "Nguyen = [[wɪn]]" in out.read_text(encoding="utf-8")
    err = capsys.readouterr().err
    assert "skipped" in err
    assert "4 entries, 3 skipped" in err
    assert main(["lexicon", "check", str(out)]) == 0
    bad = tmp_path / "bad.pls"
    bad.write_text('<!DOCTYPE x [<!ENTITY e "x">]><lexicon/>', encoding="utf-8")
    assert main(["lexicon", "import", str(bad)]) == 2
    assert "bad.pls: line 1" in capsys.readouterr().err
