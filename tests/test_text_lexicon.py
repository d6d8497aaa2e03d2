"""Pronunciation lexicons: the file format, matching, the digest in the cache key, the
reload route and ``voxserve lexicon check``, in-process on the fake engine."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fake_server import FakeServer, fake_settings, fake_synthesizer
from fakes import FakeEngine
from voxserve.cli import main
from voxserve.errors import InvalidLexicon
from voxserve.text.lexicon import Segment, load_lexicon, parse_lexicon
from voxserve.types import SynthesisRequest

pytestmark = pytest.mark.inprocess

LEXICON = """\
# a comment
sql = sequel            # lower case: any case
Nguyen = win
/\\bQ([1-4])\\b/ = quarter \\1
Siobhan = [[ʃɪˈvɔːn]]

[fake-voice]
tomato = tomahto
[other-voice]
potato = potahto
"""


def test_the_format() -> None:
    entries = parse_lexicon(LEXICON, source="lex.txt")
    assert [(e.key, e.value, e.ipa, e.regex, e.voice) for e in entries] == [
        ("sql", "sequel", False, False, "*"),
        ("Nguyen", "win", False, False, "*"),
        ("\\bQ([1-4])\\b", "quarter \\1", False, True, "*"),
        ("Siobhan", "ʃɪˈvɔːn", True, False, "*"),
        ("tomato", "tomahto", False, False, "fake-voice"),
        ("potato", "potahto", False, False, "other-voice"),
    ]
    assert entries[1].where == "lex.txt:3"


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("sql =", "nothing after '='"),
        ("just words", "expected 'word = alias'"),
        ("/(/ = x", "regular expression /(/ is invalid"),
        ("/a*/ = x", "matches the empty string"),
        ("x = [[a.b]]", "IPA may not contain"),
    ],
)
def test_a_bad_line_is_named(line: str, what: str) -> None:
    with pytest.raises(InvalidLexicon, match=rf"lex.txt:2: .*{what}".replace("(", r"\(")):
        parse_lexicon(f"ok = fine\n{line}\n", source="lex.txt")


def test_matching_whole_words_case_and_voice() -> None:
    lexicon = load_lexicon([])
    assert lexicon.apply("x", "v") == [Segment("text", "x")]
    lexicon = type(lexicon)(tuple(parse_lexicon(LEXICON)))
    assert lexicon.apply("SQL and sqlite, Nguyen's nguyen", "fake-voice") == [
        Segment("words", "sequel"),
        Segment("text", " and sqlite, "),
        Segment("words", "win"),
        Segment("text", "'s nguyen"),
    ]
    assert lexicon.apply("tomato potato", "fake-voice") == [
        Segment("words", "tomahto"),
        Segment("text", " potato"),
    ]
    assert lexicon.apply("In Q3.", "x") == [
        Segment("text", "In "),
        Segment("words", "quarter 3"),
        Segment("text", "."),
    ]
    assert lexicon.digest("fake-voice") != lexicon.digest("other-voice")
    assert load_lexicon([]).digest("fake-voice") == ""


def test_aliases_are_normalized_and_ipa_stays_for_piper(tmp_path: Path) -> None:
    path = tmp_path / "lex.txt"
    path.write_text(LEXICON, encoding="utf-8")
    synth = fake_synthesizer(FakeEngine(), fake_settings(lexicon=str(path)))
    plan = synth.plan(SynthesisRequest("Nguyen ran SQL in Q3 with a tomato."))
    assert plan.sentences == ("win ran sequel in quarter three with a tomahto.",)
    assert plan.lexicon == synth.lexicon.digest("fake-voice") != ""


def test_the_cache_never_serves_audio_of_an_older_lexicon(tmp_path: Path) -> None:
    path = tmp_path / "lex.txt"
    path.write_text("Nguyen = win\n", encoding="utf-8")
    engine = FakeEngine()
    settings = fake_settings(lexicon=str(path), cache="memory")
    with FakeServer(engine, settings) as server:

        def speak() -> httpx.Response:
            return httpx.post(
                server.url + "/v1/audio/speech",
                json={"input": "Hello Nguyen.", "stream": False, "response_format": "wav"},
                timeout=10,
            )

        first, again = speak(), speak()
        path.write_text("Nguyen = newen\n", encoding="utf-8")
        reloaded = httpx.post(server.url + "/admin/lexicon/reload", timeout=10)
        after = speak()
        path.write_text("Nguyen =\n", encoding="utf-8")
        refused = httpx.post(server.url + "/admin/lexicon/reload", timeout=10)
        kept = speak()
        listed = httpx.get(server.url + "/admin/lexicon", timeout=10)
    assert [r.headers["x-cache"] for r in (first, again, after, kept)] == [
        "miss", "hit", "miss", "hit"
    ]  # fmt: skip
    assert reloaded.json() == {"entries": 1, "files": [str(path)]}
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_lexicon"
    assert "lex.txt:1" in refused.json()["error"]["message"]
    assert listed.json()["entries"][0]["value"] == "newen"
    spoken = [text for batch in engine.batches for text in batch]
    assert spoken == ["Hello win.", "Hello newen."]


def test_lexicon_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.txt"
    good.write_text(LEXICON, encoding="utf-8")
    assert main(["lexicon", "check", str(good), "--text", "Siobhan ran SQL."]) == 0
    out = capsys.readouterr().out
    assert "6 entries" in out
    assert out.endswith("[[ ʃɪˈvɔːn ]] ran sequel.\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("a = b\nc\n", encoding="utf-8")
    assert main(["lexicon", "check", str(bad)]) == 2
    assert f"{bad}:2: expected" in capsys.readouterr().err
