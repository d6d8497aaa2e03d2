"""SSML and lexicons on the real voice, where what matters is the sound (docs/ssml.md).

Every request is spoken in-process by :class:`~voxserve.Synthesizer` with noise 0, so the
same text gives the same samples and lengths can be compared to the sample. Durations are
measured on the samples; what words are heard is judged by Whisper tiny.en (the
``transcriber`` fixture, tests/asr.py).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from asr import normalize, word_error_rate
from voxserve import Settings, SynthesisParams, SynthesisRequest, Synthesizer
from voxserve.types import FloatArray

if TYPE_CHECKING:
    from asr import Transcriber

pytestmark = pytest.mark.slow

QUIET = SynthesisParams(noise_scale=0, noise_w=0)

FRAME = 256
"""Piper's hop: every phoneme lasts a whole number of 256-sample frames."""

LEXICON = """\
VXS = speech server
/\\bQ([1-4])\\b/ = quarter \\1
"""


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesizer]:
    lexicon = tmp_path_factory.mktemp("lexicon") / "names.txt"
    lexicon.write_text(LEXICON)
    synthesizer = Synthesizer.from_settings(Settings(espeak=False, lexicon=(Path(lexicon),)))
    yield synthesizer
    synthesizer.close()


def speak(
    synth: Synthesizer, text: str, *, ssml: bool = True, params: SynthesisParams = QUIET
) -> tuple[FloatArray, int]:
    chunks = list(synth.stream(SynthesisRequest(text, params=params, ssml=ssml)))
    return np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate


def longest_silence(samples: FloatArray, rate: int, threshold: float = 1e-3) -> float:
    """Seconds of the longest stretch of samples all below ``threshold`` in magnitude."""
    quiet = np.concatenate([[False], np.abs(samples) < threshold, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = edges[1::2] - edges[0::2]
    return float(runs.max()) / rate if runs.size else 0.0


# -- break -----------------------------------------------------------------------------


def test_a_break_between_sentences_adds_its_time_within_a_frame(synth: Synthesizer) -> None:
    plain, rate = speak(synth, "<speak><s>One.</s><s>Two.</s></speak>")
    paused, _ = speak(synth, '<speak><s>One.</s><break time="700ms"/><s>Two.</s></speak>')
    added = (len(paused) - len(plain)) / rate
    # Measured 0.700 s exactly with noise off; a frame is 11.6 ms at 22.05 kHz.
    assert added == pytest.approx(0.7, abs=FRAME / rate)


def test_a_break_inside_a_sentence_is_a_silence_at_least_that_long(synth: Synthesizer) -> None:
    plain, rate = speak(synth, "<speak>Wait for it.</speak>")
    paused, _ = speak(synth, '<speak>Wait <break time="700ms"/> for it.</speak>')
    # The sentence is spoken in two parts with 0.7 s between; each part's own edges add a
    # little (measured 0.944 s longer in all), and the gap itself is one silent stretch.
    assert (len(paused) - len(plain)) / rate >= 0.7 - FRAME / rate
    assert longest_silence(paused, rate) >= 0.7 - FRAME / rate
    assert longest_silence(plain, rate) < 0.5


# -- prosody rate ------------------------------------------------------------------------

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def test_prosody_rate_changes_the_duration_as_speed_does(synth: Synthesizer) -> None:
    """rate="50%" is speed 0.5: the same samples' length. Piper divides each phoneme's
    duration by the speed, but the short silences at a sentence's ends are not phonemes
    of the text, so the ratio falls a little short of 1/rate: measured 1.743 for 50 %
    (1.76 on another sentence), 0.720 for 150 % and 1.495 for x-slow (0.6). The bound
    is the measured ratio to within 0.08, and 15 % of 1/rate."""
    plain, _ = speak(synth, f"<speak>{SENTENCE}</speak>")
    slow, _ = speak(synth, f'<speak><prosody rate="50%">{SENTENCE}</prosody></speak>')
    half_speed, _ = speak(synth, SENTENCE, ssml=False, params=dataclasses.replace(QUIET, speed=0.5))
    assert abs(len(slow) - len(half_speed)) <= FRAME
    assert len(slow) / len(plain) == pytest.approx(1.743, abs=0.08)
    assert len(slow) / len(plain) == pytest.approx(2.0, rel=0.15)

    fast, _ = speak(synth, f'<speak><prosody rate="150%">{SENTENCE}</prosody></speak>')
    assert len(fast) / len(plain) == pytest.approx(0.720, abs=0.05)
    assert len(fast) / len(plain) == pytest.approx(1 / 1.5, rel=0.15)

    x_slow, _ = speak(synth, f'<speak><prosody rate="x-slow">{SENTENCE}</prosody></speak>')
    assert len(x_slow) / len(plain) == pytest.approx(1.495, abs=0.08)


# -- say-as characters ------------------------------------------------------------------


def heard_as_letters(heard: str, word: str) -> bool:
    """Whisper writes spelled letters in capitals ("SUN") or apart ("W-E-B", "w e b")."""
    together = re.search(rf"\b{word.upper()}\b", heard)
    apart = re.search(r"\b" + r"[\s.\-]+".join(word) + r"\b", heard, re.IGNORECASE)
    return together is not None or apart is not None


@pytest.mark.parametrize("word", ["sun", "kit", "web", "job"])
def test_say_as_characters_is_heard_as_letters(
    synth: Synthesizer, transcriber: Transcriber, word: str
) -> None:
    as_letters = f'<say-as interpret-as="characters">{word}</say-as>'
    spelled, rate = speak(synth, f"<speak>The code is {as_letters}, thanks.</speak>")
    heard = transcriber.transcribe(spelled, rate)
    assert heard_as_letters(heard, word), heard
    # The control: the same word without say-as is heard as the word.
    plain, rate = speak(synth, f"<speak>The code is {word}, thanks.</speak>")
    heard_plain = transcriber.transcribe(plain, rate)
    assert not heard_as_letters(heard_plain, word), heard_plain


# -- sub and lexicon aliases ----------------------------------------------------------


def test_sub_alias_is_heard_instead_of_the_text(
    synth: Synthesizer, transcriber: Transcriber
) -> None:
    doc = '<speak>The <sub alias="World Wide Web Consortium">W3C</sub> wrote it.</speak>'
    audio, rate = speak(synth, doc)
    heard = transcriber.transcribe(audio, rate)
    assert "world wide web consortium" in normalize(heard), heard
    assert word_error_rate("The World Wide Web Consortium wrote it.", heard) <= 0.15, heard


def test_lexicon_aliases_are_heard_as_the_alias(
    synth: Synthesizer, transcriber: Transcriber
) -> None:
    audio, rate = speak(synth, "Ask VXS about Q3.", ssml=False)
    heard = transcriber.transcribe(audio, rate)
    assert "speech server" in normalize(heard), heard
    assert "quarter 3" in normalize(heard), heard
    # Also inside SSML, and only where the text is not under a sub of its own.
    audio, rate = speak(synth, "<speak>Ask VXS about it.</speak>")
    heard = transcriber.transcribe(audio, rate)
    assert "speech server" in normalize(heard), heard


# -- voice -----------------------------------------------------------------------------


def test_voice_switches_inside_one_document(transcriber: Transcriber) -> None:
    """Piper, then espeak-ng, then Piper, all resampled to a 24 kHz response: one signal
    at one rate, every span heard."""
    synth = Synthesizer.from_settings(Settings(espeak=True))
    try:
        doc = (
            "<speak>The weather is sunny today. <voice name='espeak-en-us'>"
            "Tomorrow brings heavy rain.</voice> Take an umbrella.</speak>"
        )
        params = dataclasses.replace(QUIET, sample_rate=24000)
        plan = synth.plan(SynthesisRequest(doc, params=params, ssml=True))
        assert [p.voice.engine for p in plan.parts] == ["piper", "espeak", "piper"]
        samples, rate = speak(synth, doc, params=params)
        assert rate == 24000
        heard = transcriber.transcribe(samples, rate)
        expected = "the weather is sunny today tomorrow brings heavy rain take an umbrella"
        assert word_error_rate(normalize(expected), normalize(heard)) <= 0.1, heard
    finally:
        synth.close()
