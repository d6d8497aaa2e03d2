"""Tests for voxserve.engines.espeak on Debian's real espeak-ng program.

espeak-ng is a system dependency (scripts/system-deps.sh installs it, and CI runs that), so
these tests fail, rather than skip, where it is missing.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from voxserve.engines.base import Engine, Rest
from voxserve.engines.espeak import SAMPLE_RATE, EspeakEngine, espeak_binary, list_espeak_voices
from voxserve.errors import EngineError
from voxserve.types import SynthesisParams, Voice

pytestmark = pytest.mark.inprocess


GERMAN = "Guten Morgen! Heute ist ein schöner Tag, und die Vögel singen im Garten."


@pytest.fixture(scope="module")
def binary() -> str:
    path = espeak_binary()
    assert path is not None, "espeak-ng is not installed: run scripts/system-deps.sh run"
    return path


@pytest.fixture(scope="module")
def voices(binary: str) -> dict[str, Voice]:
    return {v.id: v for v in list_espeak_voices(binary)}


@pytest.fixture(scope="module")
def german(voices: dict[str, Voice], binary: str) -> EspeakEngine:
    return EspeakEngine(voices["espeak-de"], binary)


def speak(engine: EspeakEngine, text: str, **params: float) -> np.ndarray:
    (utterance,) = engine.prepare(text, SynthesisParams(**params))
    (audio,) = engine.infer([utterance])
    return audio


def test_espeak_ng_is_installed_where_the_makefile_puts_it(binary: str) -> None:
    assert binary == "/usr/bin/espeak-ng"


def test_espeak_voices_are_listed_one_per_language(voices: dict[str, Voice]) -> None:
    assert len(voices) > 50
    for vid in ("espeak-de", "espeak-en-us", "espeak-fr-fr", "espeak-es"):
        assert vid in voices, sorted(voices)
    de = voices["espeak-de"]
    assert de.language == "de"
    assert voices["espeak-en-us"].language == "en_us"
    assert de.engine == "espeak"
    assert de.sample_rate == SAMPLE_RATE == 22050
    assert de.quality == "robotic"
    assert de.source == "espeak-ng"
    assert all(v.id == v.id.lower() and v.id.startswith("espeak-") for v in voices.values())


def test_listing_with_a_broken_binary_gives_no_voices(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="voxserve.engines.espeak"):
        assert list_espeak_voices("/nonexistent/espeak-ng") == []
    assert any("espeak-ng voices unavailable" in r.getMessage() for r in caplog.records)


def test_german_text_becomes_non_empty_audio_at_22050_hz(german: EspeakEngine) -> None:
    assert isinstance(german, Engine)
    assert german.sample_rate == 22050
    audio = speak(german, GERMAN)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    # ~70 characters of German at 175 words a minute: a few seconds, clearly not silence.
    assert 2.0 < len(audio) / german.sample_rate < 10.0
    assert np.abs(audio).max() > 0.1
    assert np.abs(audio).max() <= 1.0


def test_different_text_gives_different_audio(german: EspeakEngine) -> None:
    assert not np.array_equal(speak(german, "Eins, zwei, drei."), speak(german, "Hallo Welt."))


def test_speed_changes_length(german: EspeakEngine) -> None:
    normal = len(speak(german, GERMAN))
    fast = len(speak(german, GERMAN, speed=2.0))
    slow = len(speak(german, GERMAN, speed=0.5))
    assert fast < 0.75 * normal
    assert slow > 1.4 * normal


def test_prepare_keeps_the_text_and_skips_blank_text(german: EspeakEngine) -> None:
    params = SynthesisParams()
    (utterance,) = german.prepare("Hallo.", params)
    assert utterance.text == "Hallo."
    assert utterance.ids == ()
    assert german.prepare("   ", params) == []


def test_text_that_looks_like_an_option_is_spoken_not_parsed(german: EspeakEngine) -> None:
    """The text goes on stdin, so '--help' or '-v xx' cannot change espeak's options."""
    audio = speak(german, "--stdout -v en --help")
    assert len(audio) > 0.3 * german.sample_rate


def test_infer_returns_one_array_per_item_in_order(german: EspeakEngine) -> None:
    params = SynthesisParams()
    texts = ["Ja.", "Das ist ein deutlich längerer Satz mit vielen Wörtern.", "Nein."]
    batch = [u for t in texts for u in german.prepare(t, params)]
    out = german.infer(batch)
    assert [len(a) for a in out] == [len(speak(german, t)) for t in texts]
    assert len(out[1]) > 3 * len(out[0])


def test_a_missing_program_is_an_engine_error(voices: dict[str, Voice]) -> None:
    engine = EspeakEngine(voices["espeak-de"], "/nonexistent/espeak-ng")
    (utterance,) = engine.prepare("Hallo.", SynthesisParams())
    with pytest.raises(EngineError, match="espeak-ng failed for voice espeak-de"):
        engine.infer([utterance])


def test_a_head_is_the_whole_sentence_and_there_is_no_rest(german: EspeakEngine) -> None:
    """espeak-ng cannot stop early: infer_head returns all of the audio."""
    (utterance,) = german.prepare(GERMAN, SynthesisParams())
    (head,) = german.infer_head([utterance], 0.5)
    assert head.rest is None
    assert len(head.audio) / SAMPLE_RATE > 2.0
    with pytest.raises(TypeError, match="no rest"):
        german.infer_rest([Rest(utterance, None)])
