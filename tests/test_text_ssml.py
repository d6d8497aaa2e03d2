"""SSML: the hardened parser (hostile documents refused fast), what each tag becomes in
the plan, and the doors that accept it, in-process on the fake engine. What each tag does
to the sound is checked on the real model in test_ssml_live.py."""

from __future__ import annotations

import time

import httpx
import pytest

from fake_server import FakeServer, fake_settings, fake_synthesizer
from fakes import FakeEngine
from voxserve.errors import InvalidSsml, TextTooLong
from voxserve.synthesizer import Synthesizer
from voxserve.text.ssml import MAX_DEPTH, is_ssml, parse_ssml
from voxserve.types import SynthesisParams, SynthesisRequest

pytestmark = pytest.mark.inprocess

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<speak>&lol9;</speak>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE speak [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<speak>&xxe;</speak>"""
DEEP = "<speak>" + "<s>" * 10_000 + "hi" + "</s>" * 10_000 + "</speak>"
NOV_24 = "November twenty-fourth, twenty twenty-six"
WIDE = '<speak><sub alias="' + "a" * 1_000_000 + '">x</sub></speak>'


@pytest.fixture
def synth() -> Synthesizer:
    return fake_synthesizer(FakeEngine(), fake_settings(max_input_chars=2_000_000))


def ssml(synth: Synthesizer, document: str, **params: float) -> object:
    return synth.plan(SynthesisRequest(document, ssml=True, params=SynthesisParams(**params)))


# -- the parser: hostile and invalid documents ----------------------------------------------


@pytest.mark.parametrize(
    ("document", "what"),
    [
        (BILLION_LAUGHS, "document type declaration"),
        (EXTERNAL, "document type declaration"),
        (DEEP, f"nest more than {MAX_DEPTH} deep"),
        (WIDE, "is 1000000 characters long"),
        ("<speak>&nbsp;</speak>", "undefined entity"),
        ("<speak>Hello <break time='5 parsecs'/></speak>", "break time must be like"),
        ("<speak>Hello", "no element found"),
        ("<p>Hello</p>", "root element must be <speak>"),
        ("<speak><say-as interpret-as='klingon'>x</say-as></speak>", "interpret-as must be"),
        ("<speak><prosody rate='fastest'>x</prosody></speak>", "prosody rate must be like"),
        ("<speak><phoneme alphabet='x-sampa' ph='a'>x</phoneme></speak>", "alphabet must be"),
    ],
    ids=["billion-laughs", "external-entity", "deep", "wide-attribute", "entity", "break",
         "unclosed", "root", "say-as", "prosody", "alphabet"],
)  # fmt: skip
def test_hostile_and_invalid_documents_are_refused_fast(
    synth: Synthesizer, document: str, what: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidSsml, match=r"line [0-9]+, column [0-9]+") as refused:
        ssml(synth, document)
    assert time.perf_counter() - started < 0.5
    assert what in refused.value.message
    assert refused.value.param == "input"


def test_an_error_names_the_line_and_column_where_it_is() -> None:
    with pytest.raises(InvalidSsml, match=r"line 3, column 8: .*break time"):
        parse_ssml("<speak>\n  Hello.\n  Then <break time='x'/> bye.</speak>")


def test_over_http_hostile_ssml_is_400_naming_the_place() -> None:
    with FakeServer(FakeEngine(), fake_settings(max_input_chars=2_000_000)) as server:
        for document in (BILLION_LAUGHS, EXTERNAL, DEEP, WIDE):
            started = time.perf_counter()
            response = httpx.post(
                server.url + "/v1/audio/speech", json={"input": document}, timeout=10
            )
            assert response.status_code == 400
            assert time.perf_counter() - started < 2
            error = response.json()["error"]
            assert error["code"] == "invalid_ssml"
            assert "line" in error["message"]
            assert "column" in error["message"]


def test_the_input_limit_applies_to_the_document_as_sent() -> None:
    synth = fake_synthesizer(FakeEngine(), fake_settings())
    with pytest.raises(TextTooLong):
        ssml(synth, WIDE)


def test_is_ssml() -> None:
    assert is_ssml("<speak>hi</speak>")
    assert is_ssml('  <?xml version="1.0"?>\n<speak version="1.1">hi</speak>')
    assert is_ssml(BILLION_LAUGHS)
    assert not is_ssml("<speaker>hi</speaker>")
    assert not is_ssml("Say <speak> please")


# -- what the tags become --------------------------------------------------------------------


def test_plain_text_plans_as_before(synth: Synthesizer) -> None:
    plan = synth.plan(SynthesisRequest("Hello there. It is 5 kg."))
    assert plan.sentences == ("Hello there.", "It is five kilograms.")
    assert plan.sentence_params == ()
    assert plan.pauses == ()
    assert plan.warnings == ()
    assert [plan.pause_after(i) for i in range(2)] == [0.2, 0.0]


def test_break_adds_its_silence_where_it_stands(synth: Synthesizer) -> None:
    plan = ssml(
        synth,
        '<speak>Hello there. <break time="700ms"/> How are you <break strength="strong"/>'
        " today? Fine.</speak>",
    )
    assert plan.sentences == ("Hello there.", "How are you", "today?", "Fine.")
    assert [round(plan.pause_after(i), 3) for i in range(4)] == [0.9, 0.75, 0.2, 0.0]


def test_prosody_and_emphasis_set_each_sentences_speed_and_volume(synth: Synthesizer) -> None:
    plan = ssml(
        synth,
        '<speak>Normal. <prosody rate="50%" volume="+6dB">Slow and loud.</prosody> '
        '<prosody rate="fast">Fast <emphasis level="strong">really</emphasis></prosody></speak>',
        speed=1.2,
    )
    assert plan.sentences == ("Normal.", "Slow and loud.", "Fast", "really")
    speeds = [round(plan.params_at(i).speed, 3) for i in range(4)]
    volumes = [round(plan.params_at(i).volume, 3) for i in range(4)]
    assert speeds == [1.2, 0.6, 1.5, round(1.2 * 1.25 * 0.85, 3)]
    assert volumes == [1.0, 1.995, 1.0, 1.25]


@pytest.mark.parametrize(
    ("markup", "spoken"),
    [
        ('<say-as interpret-as="characters">FBI</say-as>', "ef bee eye"),
        ('<say-as interpret-as="spell-out">ab1</say-as>', "eh bee one"),
        ('<say-as interpret-as="cardinal">1,234</say-as>', "one thousand two hundred thirty-four"),
        ('<say-as interpret-as="ordinal">21</say-as>', "twenty-first"),
        ('<say-as interpret-as="digits">2490</say-as>', "two four nine zero"),
        ('<say-as interpret-as="telephone">+1 555 0100</say-as>',
         "plus one, five five five, zero one zero zero"),
        ('<say-as interpret-as="date" format="dmy">24/11/2026</say-as>', NOV_24),
        ('<say-as interpret-as="date" format="mdy">11/24/26</say-as>', NOV_24),
        ('<say-as interpret-as="time">14:30</say-as>', "fourteen thirty"),
        ('<say-as interpret-as="currency">$3.50</say-as>', "three dollars and fifty cents"),
        ('<sub alias="World Wide Web Consortium">W3C</sub>', "World Wide Web Consortium"),
    ],
)  # fmt: skip
def test_say_as_and_sub(synth: Synthesizer, markup: str, spoken: str) -> None:
    plan = ssml(synth, f"<speak>Say {markup} now.</speak>")
    assert plan.sentences == (f"Say {spoken} now.",)


def test_phoneme_falls_back_to_its_text_on_a_voice_without_ipa() -> None:
    # The fake engine is not Piper: it takes no phoneme blocks.
    synth = fake_synthesizer(FakeEngine(), fake_settings())
    plan = synth.plan(
        SynthesisRequest('<speak><phoneme ph="təˈmɑːtoʊ">tomato</phoneme></speak>', ssml=True)
    )
    assert plan.sentences == ("tomato",)


def test_unknown_tags_are_warned_about_and_their_text_spoken(synth: Synthesizer) -> None:
    plan = ssml(synth, "<speak><foo>Hello</foo> <audio src='x.wav'>there</audio>.</speak>")
    assert plan.sentences == ("Hello there.",)
    assert plan.warnings == ("<foo> is not supported; its text is spoken without it",)


def test_marks_say_where_they_stand(synth: Synthesizer) -> None:
    plan = ssml(synth, '<speak><mark name="a"/>One two. Three <mark name="b"/>four.</speak>')
    assert [(m.name, m.sentence, m.offset) for m in plan.marks] == [("a", 0, 0), ("b", 1, 6)]


def test_ssml_changes_the_cache_key_only_where_it_changes_the_audio(synth: Synthesizer) -> None:
    plain = synth.plan(SynthesisRequest("Hello there. How are you?"))
    same = ssml(synth, "<speak><p>Hello there.</p> <s>How are you?</s></speak>")
    slower = ssml(synth, "<speak>Hello there. <prosody rate='slow'>How are you?</prosody></speak>")
    paused = ssml(synth, "<speak>Hello there. <break time='1s'/>How are you?</speak>")
    key = plain.cache_key(streamed=False)
    assert same.cache_key(streamed=False) == key
    assert len({key, slower.cache_key(streamed=False), paused.cache_key(streamed=False)}) == 3


# -- the doors --------------------------------------------------------------------------------


def test_the_routes_take_ssml_and_say_what_they_ignored() -> None:
    engine = FakeEngine()
    document = "<speak>Hello <foo>there</foo>.</speak>"
    with FakeServer(engine, fake_settings()) as server:
        openai = httpx.post(
            server.url + "/v1/audio/speech",
            json={"input": document, "response_format": "wav"},
            timeout=10,
        )
        forced = httpx.post(
            server.url + "/v1/audio/speech",
            json={"input": "<speak>x</speak>", "input_type": "text", "stream": False},
            timeout=10,
        )
        coqui = httpx.post(server.url + "/api/tts", data={"text": document}, timeout=10)
        mary = httpx.post(
            server.url + "/process",
            data={"INPUT_TEXT": document, "INPUT_TYPE": "SSML", "OUTPUT_TYPE": "AUDIO"},
            timeout=10,
        )
    for response in (openai, coqui, mary):
        assert response.status_code == 200, response.text
        assert response.headers["x-ssml-warnings"] == (
            "<foo> is not supported; its text is spoken without it"
        )
    assert forced.status_code == 200
    assert "x-ssml-warnings" not in forced.headers
    spoken = [text for batch in engine.batches for text in batch]
    assert spoken.count("Hello there.") == 3
    assert any("speak" in text for text in spoken)  # forced plain text: the tags are read
