"""Word timings and captions (voxserve.words, voxserve.captions) on the real voice,
judged by faster-whisper's own word times, and their plumbing."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import statistics
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import srt
import webvtt

from voxserve.asr import Options, WhisperRecognizer
from voxserve.asr.models import TINY_EN, discover
from voxserve.asr.wer import normalize
from voxserve.audio import resample
from voxserve.captions import render
from voxserve.settings import Settings
from voxserve.synthesizer import Synthesizer
from voxserve.types import AudioChunk, SynthesisParams, SynthesisRequest, WordTiming
from voxserve.words import align

#: Whisper's word times come from cross-attention and are themselves off by about a tenth
#: of a second (faster-whisper's docs and our own runs: its ends fall late into pauses).
#: So the median start difference is the measure, and 0.15 s is what two honest clocks
#: agree to; a word misplaced by a sentence or a pause would be off by 0.2-1 s.
TOLERANCE = 0.15

PLAIN = "The quick brown fox jumps over the lazy dog near the river bank."
LONGER = (
    "Good morning. It is nine o'clock in the morning of a cold winter day. "
    "The train to the city leaves from the second platform, and it is late again."
)


@pytest.fixture(scope="module")
def synth() -> Iterator[Synthesizer]:
    synth = Synthesizer.from_settings(Settings(cache="off"))
    yield synth
    synth.close()


@pytest.fixture(scope="module")
def recognizer() -> WhisperRecognizer:
    model = discover(TINY_EN, Path(".cache/voxserve/models"))[TINY_EN]
    return WhisperRecognizer(model, threads=2)


def timed(synth: Synthesizer, text: str, **params: float) -> list[AudioChunk]:
    plan = synth.plan(SynthesisRequest(text, params=SynthesisParams(**params)))
    return list(synth.stream_plan(dataclasses.replace(plan, words="chunks")))


def heard(recognizer: WhisperRecognizer, chunks: list[AudioChunk]) -> list[WordTiming]:
    audio = np.concatenate([c.samples for c in chunks])
    audio16 = resample(audio, chunks[0].sample_rate, 16000)
    _, segments = recognizer.start(audio16, Options(words=True, language="en", vad=False))
    return [WordTiming(normalize(w.word), w.start, w.end) for s in segments for w in s.words]


def start_differences(ours: list[WordTiming], theirs: list[WordTiming]) -> list[float]:
    """|start difference| of the words both say, paired in order by their spelling."""
    differences = []
    j = 0
    for word in ours:
        name = normalize(word.word)
        for k in range(j, min(j + 3, len(theirs))):
            if theirs[k].word == name:
                differences.append(abs(theirs[k].start - word.start))
                j = k + 1
                break
    return differences


def all_words(chunks: list[AudioChunk]) -> list[WordTiming]:
    return [w for c in chunks for w in c.words]


@pytest.mark.parametrize(
    ("text", "params"),
    [(PLAIN, {}), (LONGER, {}), (LONGER, {"speed": 1.5}), (PLAIN, {"speed": 0.7})],
    ids=["plain", "sentences", "faster", "slower"],
)
def test_word_times_agree_with_whisper(
    synth: Synthesizer, recognizer: WhisperRecognizer, text: str, params: dict[str, float]
) -> None:
    chunks = timed(synth, text, **params)
    ours = all_words(chunks)
    assert [w.word for w in ours] == text.replace(".", "").replace(",", "").split()
    differences = start_differences(ours, heard(recognizer, chunks))
    assert len(differences) >= 0.8 * len(ours)
    assert statistics.median(differences) <= TOLERANCE, differences


def test_words_are_in_order_and_inside_the_audio(synth: Synthesizer) -> None:
    chunks = timed(synth, LONGER, sample_rate=16000, sentence_silence=0.5)
    words = all_words(chunks)
    duration = sum(c.duration for c in chunks)
    assert words[0].start >= 0
    for word, after in itertools.pairwise(words):
        assert word.start <= word.end <= after.start + 1e-9
    assert words[-1].end <= duration
    # each sentence's words start after the previous sentence's audio (and its silence)
    starts = np.cumsum([0.0] + [c.duration for c in chunks])
    for chunk, start in zip(chunks, starts, strict=False):
        assert chunk.words[0].start >= start
        assert chunk.words[-1].end <= start + chunk.duration


def test_the_scheduled_stream_gives_the_same_words_as_the_sync_path(synth: Synthesizer) -> None:
    """Head and rest (a stream's first sentence) and read-ahead: the same words, in the
    same places (noise off: the same durations)."""
    params = SynthesisParams(noise_scale=0, noise_w=0)
    plan = synth.plan(SynthesisRequest(LONGER, params=params))
    plan = dataclasses.replace(plan, words="chunks")
    sync = all_words(list(synth.stream_plan(plan)))

    async def streamed() -> list[AudioChunk]:
        asynth = Synthesizer.from_settings(Settings(cache="off", stream_head_seconds=0.3))
        try:
            return [c async for c in asynth.astream(plan)]
        finally:
            await asynth.aclose()

    chunks = asyncio.run(streamed())
    assert not chunks[0].complete
    assert chunks[0].words
    assert not chunks[1].words
    assert [(w.word, round(w.start, 3)) for w in all_words(chunks)] == [
        (w.word, round(w.start, 3)) for w in sync
    ]


def test_plain_audio_carries_no_words_and_keeps_its_cache_key(synth: Synthesizer) -> None:
    plan = synth.plan(SynthesisRequest(PLAIN))
    assert all(not c.words for c in synth.stream_plan(plan))
    keys = {
        dataclasses.replace(plan, words=form).cache_key(streamed=False)
        for form in ("", "json", "srt", "vtt", "sse")
    }
    assert len(keys) == 5


def test_captions_parse_with_real_subtitle_parsers(synth: Synthesizer, tmp_path: Path) -> None:
    sentences = [c.words for c in timed(synth, LONGER) if c.words]
    subtitles = list(srt.parse(render("srt", sentences)))
    words = [w.word for s in sentences for w in s]
    assert " ".join(s.content for s in subtitles).split() == words
    assert all(len(s.content) <= 42 for s in subtitles)
    path = tmp_path / "out.vtt"
    path.write_text(render("vtt", sentences))
    captions = webvtt.read(str(path))
    assert " ".join(c.text for c in captions).split() == words
    assert [c.start_in_seconds for c in captions] == sorted(c.start_in_seconds for c in captions)


def test_align_joins_and_splits() -> None:
    spoken = [
        WordTiming("ɪnðə", 0.0, 1.0),
        WordTiming("mˈɔːɹnɪŋ", 1.0, 2.0),
        WordTiming("aɪɐm", 2.0, 3.0),
    ]
    words = align("In the morning, I am.", spoken)
    assert [w.word for w in words] == ["In", "the", "morning", "I", "am"]
    assert words[1].end == 1.0
    assert words[2].start == 1.0
    assert words[4].end == 3.0
    assert align("...", spoken) == ()
    assert align("Hello", []) == ()
