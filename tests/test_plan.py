"""Planning a request on the fake engine: what counts as speakable, the limits on what the
text becomes, and the cache key's ingredients (the real model's are in test_cache_backends)."""

from __future__ import annotations

import httpx
import pytest

from fake_server import FakeServer, fake_settings, fake_synthesizer
from fakes import FakeEngine
from voxserve.errors import EmptyText, SpokenTextTooLong, TextTooLong
from voxserve.synthesizer import Synthesizer
from voxserve.types import SynthesisRequest

pytestmark = pytest.mark.inprocess


@pytest.fixture
def synth() -> Synthesizer:
    return fake_synthesizer(FakeEngine(), fake_settings(max_spoken_chars=200))


@pytest.mark.parametrize("text", ["...", "-", "?!", "…", "$", " . . . "])
def test_punctuation_only_input_is_not_speakable(synth: Synthesizer, text: str) -> None:
    with pytest.raises(EmptyText, match="no speakable text") as refused:
        synth.plan(SynthesisRequest(text))
    assert refused.value.param == "input"


def test_pieces_without_a_letter_or_digit_are_dropped_from_a_text(synth: Synthesizer) -> None:
    plan = synth.plan(SynthesisRequest("Hello there. ... ?! Goodbye now."))
    assert plan.sentences == ("Hello there.", "Goodbye now.")


def test_the_limits_are_on_the_text_as_sent_and_as_spoken(synth: Synthesizer) -> None:
    with pytest.raises(SpokenTextTooLong) as spoken:
        synth.plan(SynthesisRequest("1234567 " * 4))  # 32 characters, 272 spoken
    assert spoken.value.limit == 200
    assert spoken.value.length > 200 > len("1234567 " * 4)
    with pytest.raises(TextTooLong):
        synth.plan(SynthesisRequest("a " * 3000))  # over max_input_chars (4096) as sent
    assert synth.plan(SynthesisRequest("a " * 3000), max_chars=10_000).sentences  # the CLI's


def test_over_http_punctuation_only_input_is_400_empty_input() -> None:
    with FakeServer(FakeEngine(), fake_settings()) as server:
        response = httpx.post(server.url + "/v1/audio/speech", json={"input": "..."}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "empty_input"
