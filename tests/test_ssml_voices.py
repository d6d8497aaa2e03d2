"""SSML <voice name> switching inside one document: each span in its voice, one output
rate (voxserve.plan.with_parts, sentences.JoinedParts), on fake engines of different
rates."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import replace

import httpx
import numpy as np
import pytest

from fake_server import FakeServer, fake_settings
from fakes import FakeEngine
from voxserve.configs import LibraryConfig, SynthesisConfig
from voxserve.engines.base import Head
from voxserve.engines.voices import VoiceLibrary
from voxserve.errors import InvalidSsml
from voxserve.settings import Settings
from voxserve.synthesizer import Synthesizer
from voxserve.text.ssml import parse_ssml
from voxserve.types import AudioChunk, SynthesisRequest, Utterance, WordTiming

pytestmark = pytest.mark.inprocess

DOC = (
    "<speak>First words here. <voice name='fake-fast'>Second voice now. And more.</voice>"
    " Back to the first.</speak>"
)


class TimingEngine(FakeEngine):
    """The fake engine timing its words: each space-separated word an equal share."""

    def infer_head(
        self, batch: Sequence[Utterance], seconds: float, *, exclusive: bool = False
    ) -> list[Head]:
        if seconds != math.inf:
            return super().infer_head(batch, seconds, exclusive=exclusive)
        heads = []
        for utterance, audio in zip(batch, self.infer(batch, exclusive=exclusive), strict=True):
            words = utterance.text.split()
            step = len(audio) / self.sample_rate / len(words)
            timed = tuple(WordTiming(w, i * step, (i + 1) * step) for i, w in enumerate(words))
            heads.append(Head(audio, None, timed))
        return heads


@pytest.fixture
def engines() -> dict[str, FakeEngine]:
    return {
        "fake-voice": TimingEngine(voice_id="fake-voice", sample_rate=8000),
        "fake-fast": TimingEngine(voice_id="fake-fast", sample_rate=16000),
    }


@pytest.fixture
def synth(engines: dict[str, FakeEngine]) -> Synthesizer:
    settings = Settings(default_voice="fake-voice", espeak=False, cache="off", lanes=1)
    voices = [e.voice for e in engines.values()]
    config = LibraryConfig.from_settings(settings)
    library = VoiceLibrary(voices, config, loaders={"fake": lambda v: engines[v.id]})
    return Synthesizer(library, SynthesisConfig.from_settings(settings))


def test_runs_carry_the_voice_in_force_and_the_names_where_they_stand() -> None:
    document = parse_ssml(DOC)
    voices = {r.value.strip(): r.voice for r in document.runs if r.kind == "text"}
    assert voices["First words here."] is None
    assert voices["Second voice now. And more."] == "fake-fast"
    assert document.voices == (("fake-fast", "line 1, column 26"),)
    assert document.warnings == ()


def test_each_span_is_a_part_in_its_voice(synth: Synthesizer) -> None:
    plan = synth.plan(SynthesisRequest(DOC, ssml=True))
    assert [p.voice.id for p in plan.parts] == ["fake-voice", "fake-fast", "fake-voice"]
    assert [p.sentences for p in plan.parts] == [
        ("First words here.",), ("Second voice now.", "And more."), ("Back to the first.",)
    ]  # fmt: skip
    assert plan.output_rate == 8000
    assert {p.output_rate for p in plan.parts} == {8000}
    # The sentence silence stays between the spans, and none follows the last.
    assert [p.pauses for p in plan.parts] == [(0.2,), (0.2, 0.2), (0.0,)]
    one_voice = synth.plan(SynthesisRequest(DOC.replace("fake-fast", "fake-voice"), ssml=True))
    assert one_voice.parts == ()
    assert one_voice.voice.id == "fake-voice"
    assert plan.cache_key(streamed=False) != one_voice.cache_key(streamed=False)


def test_a_document_in_one_named_voice_is_spoken_in_it(synth: Synthesizer) -> None:
    doc = "<speak><voice name='fake-fast'>Hi.</voice></speak>"
    plan = synth.plan(SynthesisRequest(doc, ssml=True))
    assert plan.voice.id == "fake-fast"
    assert plan.parts == ()
    assert plan.output_rate == 16000


def test_the_audio_is_each_voice_resampled_to_one_rate(
    synth: Synthesizer, engines: dict[str, FakeEngine]
) -> None:
    chunks = list(synth.stream(SynthesisRequest(DOC, ssml=True)))
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    assert {c.sample_rate for c in chunks} == {8000}
    assert engines["fake-fast"].inferred() == ["Second voice now.", "And more."]
    assert engines["fake-voice"].inferred() == ["First words here.", "Back to the first."]
    # The 16 kHz voice's sentence takes as long at 8 kHz: half its samples, pause added.
    fast = len(engines["fake-fast"].render("Second voice now.")) / 2 + 0.2 * 8000
    assert abs(len(chunks[1].samples) - fast) <= 64
    audio = synth.synthesize(SynthesisRequest(DOC, ssml=True))
    assert audio.sample_rate == 8000
    assert audio.sentences == 4


def test_the_scheduled_path_gives_what_the_direct_one_does(synth: Synthesizer) -> None:
    plan = synth.plan(SynthesisRequest(DOC, ssml=True))
    direct = list(synth.stream_plan(plan))

    async def scheduled(whole: bool) -> list[AudioChunk]:
        try:
            return [c async for c in synth.astream(plan, whole=whole)]
        finally:
            for sched in synth.schedulers():
                await sched.stop()

    for whole in (True, False):
        chunks = asyncio.run(scheduled(whole))
        joined = np.concatenate([c.samples for c in chunks])
        assert {c.index for c in chunks} == {0, 1, 2, 3}
        assert np.allclose(joined, np.concatenate([c.samples for c in direct]), atol=1e-4)


def test_words_are_timed_from_the_start_of_the_whole_audio(synth: Synthesizer) -> None:
    plan = replace(synth.plan(SynthesisRequest(DOC, ssml=True)), words="json")
    at = 0.0
    for chunk in synth.stream_plan(plan):
        # Each sentence's first word starts where its chunk does, its last ends before
        # the pause after it.
        assert chunk.words[0].start == pytest.approx(at, abs=0.01)
        pause = plan.pause_after(chunk.index)
        assert chunk.words[-1].end == pytest.approx(at + chunk.duration - pause, abs=0.01)
        at += chunk.duration


def test_an_unknown_voice_is_refused_naming_it_and_where(synth: Synthesizer) -> None:
    doc = "<speak>Hi.\n  <voice name='nobody'>there</voice></speak>"
    with pytest.raises(InvalidSsml) as refused:
        synth.plan(SynthesisRequest(doc, ssml=True))
    assert "line 2, column 3" in refused.value.message
    assert "'nobody'" in refused.value.message
    assert refused.value.param == "input"


def test_over_http_an_unknown_voice_is_a_400_naming_it() -> None:
    engine = FakeEngine()
    with FakeServer(engine, fake_settings()) as server:
        unknown = httpx.post(
            server.url + "/v1/audio/speech",
            json={"input": "<speak>Hi <voice name='nobody'>there</voice>.</speak>"},
            timeout=10,
        )
    assert unknown.status_code == 400
    error = unknown.json()["error"]
    assert error["code"] == "invalid_ssml"
    assert error["param"] == "input"
    assert "line 1, column 11" in error["message"]
    assert "'nobody'" in error["message"]
