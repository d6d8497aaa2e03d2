"""The Wyoming door for real: ``python -m voxserve serve`` with the bundled Piper voice,
espeak-ng and Whisper, driven by the real ``wyoming`` client as Home Assistant drives it.

The audio is compared with the HTTP route's streamed ``pcm`` for the same text and
parameters: Piper samples noise, so both sides ask for none (``noise_scale`` and
``noise_w`` 0, in Wyoming through voxserve's ``voxserve`` object of the event). One
``synthesize`` is that HTTP request byte for byte. A streamed text is planned piece by
piece as its sentences complete, and as served by default a piece's first sentence is
vocoded in two parts (head and rest) and may run on a lane or on every core, so a few
samples differ by one 16-bit step; with one lane and whole sentences
(VOXSERVE_LANES=1, VOXSERVE_STREAM_HEAD_SECONDS=0) every sample is equal. Clients served
at the same time run on lanes and on every core in turns: their audio is compared by
length and waveform (correlation), as test_concurrency.py does.

The hang-up test reads ``voxserve_batch_size_sum`` (sentences that reached the model)
and the process's CPU time from the metrics listener, as test_server_streaming.py does:
the server is idle when it burns under a tenth of a core with nothing queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from live import LiveServer, wait_until_idle
from voxserve.asr.wer import word_error_rate
from wyoming_client import (
    connect,
    describe,
    read_until,
    stream,
    synthesize,
    synthesize_event,
    transcribe,
    transcript,
)

pytestmark = pytest.mark.slow

PIPER = "en_US-joe-medium"
ESPEAK = "espeak-en-us"
DETERMINISTIC: dict[str, Any] = {"noise_scale": 0, "noise_w": 0}
TEXT = "Turn on the kitchen lights. The thermostat is set to twenty one degrees."
FORTY_SENTENCES = " ".join(f"Step {n}." for n in range(1, 41))
SENTENCES_INFERRED = f'voxserve_batch_size_sum{{voice="{PIPER}"}}'
#: Word error rate bound of Whisper tiny.en on the Piper voice (test_transcribe_live.py).
WER_BOUND = 0.15


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer({"VOXSERVE_CACHE": "off"}) as live:
        assert live.wyoming_port, live.log
        yield live


def http_pcm(server: LiveServer, text: str, voice: str, **params: Any) -> bytes:
    body = {"input": text, "voice": voice, "response_format": "pcm", "stream": True, **params}
    response = httpx.post(server.url + "/v1/audio/speech", json=body, timeout=300)
    assert response.status_code == 200, response.text
    return response.content


def test_describe_lists_piper_espeak_and_whisper(server: LiveServer) -> None:
    info = asyncio.run(describe(server.wyoming_port))
    (tts,) = info.tts
    assert tts.supports_synthesize_streaming
    voices = {v.name: v for v in tts.voices}
    assert voices[PIPER].languages == ["en_US"]
    assert voices[PIPER].attribution.url == "https://github.com/rhasspy/piper"
    assert voices[ESPEAK].languages == ["en_US"]  # espeak-ng's en-us, as Piper writes it
    assert len(voices) > 50  # espeak-ng's languages
    (asr,) = info.asr
    models = {m.name: m.languages for m in asr.models}
    assert asr.models[0].name == "whisper-tiny.en"  # the default first
    assert models["whisper-tiny.en"] == ["en"]
    if "whisper-base" in models:  # the asr-base extra: multilingual
        assert {"en", "de", "fr", "ja"} <= set(models["whisper-base"])


@pytest.mark.parametrize("voice", [PIPER, ESPEAK])
def test_synthesize_gives_the_http_routes_audio(server: LiveServer, voice: str) -> None:
    reply = asyncio.run(synthesize(server.wyoming_port, TEXT, voice, DETERMINISTIC))
    assert reply.error is None, reply.error
    assert (reply.width, reply.channels) == (2, 1)
    assert reply.rate == 22_050  # both voices' own rate
    assert reply.samples > reply.rate  # over a second of speech
    assert reply.pcm == http_pcm(server, TEXT, voice, **DETERMINISTIC)


def samples(pcm: bytes) -> npt.NDArray[np.int32]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


def similarity(a: npt.NDArray[np.int32], b: npt.NDArray[np.int32]) -> float:
    """Correlation of two waveforms: 1 for the same audio, ~0 for other audio."""
    n = min(len(a), len(b))
    x, y = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)))


@pytest.mark.parametrize("voice", [PIPER, ESPEAK])
def test_text_streamed_word_by_word_gives_the_whole_texts_audio(
    server: LiveServer, voice: str, record_property: Any
) -> None:
    words = [word + " " for word in TEXT.split()]
    reply = asyncio.run(stream(server.wyoming_port, words, voice, DETERMINISTIC))
    assert reply.error is None, reply.error
    assert reply.types[-1] == "synthesize-stopped"
    streamed, http = samples(reply.pcm), samples(http_pcm(server, TEXT, voice, **DETERMINISTIC))
    assert len(streamed) == len(http)
    differing = streamed - http
    record_property("samples_differing", int(np.count_nonzero(differing)))
    assert np.abs(differing).max() <= 1
    assert np.count_nonzero(differing) < len(http) / 1000


def test_with_one_lane_and_whole_sentences_a_stream_is_the_http_audio_exactly() -> None:
    env = {"VOXSERVE_CACHE": "off", "VOXSERVE_ESPEAK": "false", "VOXSERVE_LANES": "1",
           "VOXSERVE_STREAM_HEAD_SECONDS": "0"}  # fmt: skip
    with LiveServer(env) as server:
        words = [word + " " for word in TEXT.split()]
        reply = asyncio.run(stream(server.wyoming_port, words, PIPER, DETERMINISTIC))
        assert reply.pcm == http_pcm(server, TEXT, PIPER, **DETERMINISTIC)


def test_interleaved_wyoming_and_http_clients_never_get_each_others_audio(
    server: LiveServer, record_property: Any
) -> None:
    """Each text twice, once over HTTP and once over Wyoming (whole or streamed), all at
    once: every reply has its own text's length and waveform, and no other's."""
    texts = [
        "The red kettle is boiling.",
        "Seven swans are on the lake.",
        "Please lock the back door tonight.",
        "The garden needs water tomorrow.",
        "A parcel arrived for you this morning.",
        "Dinner is ready in ten minutes.",
    ]
    references = [samples(http_pcm(server, t, PIPER, **DETERMINISTIC)) for t in texts]

    async def run() -> list[bytes]:
        async def over_http(text: str) -> bytes:
            body = {"input": text, "voice": PIPER, "response_format": "pcm", "stream": True,
                    **DETERMINISTIC}  # fmt: skip
            async with httpx.AsyncClient(timeout=300) as client:
                return (await client.post(server.url + "/v1/audio/speech", json=body)).content

        async def over_wyoming(text: str, streamed: bool) -> bytes:
            if streamed:
                words = [word + " " for word in text.split()]
                return (await stream(server.wyoming_port, words, PIPER, DETERMINISTIC)).pcm
            return (await synthesize(server.wyoming_port, text, PIPER, DETERMINISTIC)).pcm

        jobs = [over_http(t) for t in texts]
        jobs += [over_wyoming(t, n % 2 == 1) for n, t in enumerate(texts)]
        return list(await asyncio.gather(*jobs))

    worst = 1.0
    for n, pcm in enumerate(asyncio.run(run())):
        own = n % len(texts)
        got = samples(pcm)
        assert len(got) == len(references[own]), (n, texts[own])
        worst = min(worst, similarity(got, references[own]))
        assert similarity(got, references[own]) > 0.99, (n, texts[own])
        for other, reference in enumerate(references):
            if other != own:
                assert similarity(got, reference) < 0.5, (n, texts[own], texts[other])
    record_property("worst_own_correlation", round(worst, 6))


def test_a_hang_up_mid_synthesis_stops_the_work(server: LiveServer) -> None:
    """40 sentences, the client leaves after its first audio: a few sentences reach the
    model, not forty (the full request is measured first, on the same server)."""
    start = wait_until_idle(server, PIPER)
    full = asyncio.run(synthesize(server.wyoming_port, FORTY_SENTENCES, PIPER, DETERMINISTIC))
    assert full.error is None
    after_full = wait_until_idle(server, PIPER)
    assert after_full[SENTENCES_INFERRED] - start[SENTENCES_INFERRED] == 40

    async def hang_up() -> None:
        async with connect(server.wyoming_port) as client:
            await client.write_event(synthesize_event(FORTY_SENTENCES, PIPER, DETERMINISTIC))
            await read_until(client, "audio-chunk")

    asyncio.run(hang_up())
    assert asyncio.run(synthesize(server.wyoming_port, "Still here.", PIPER)).samples > 0
    after = wait_until_idle(server, PIPER)
    sentences = after[SENTENCES_INFERRED] - after_full[SENTENCES_INFERRED]
    assert 1 <= sentences < 20, sentences
    cancelled = 'voxserve_wyoming_requests_total{kind="synthesize",outcome="cancelled"}'
    assert after[cancelled] == 1
    assert after['voxserve_requests_abandoned_total{reason="disconnected"}'] >= 1


def test_what_the_voice_says_is_transcribed_back(server: LiveServer) -> None:
    """The Piper voice's words, sent as Home Assistant sends a microphone (PCM chunks, at
    the voice's 22.05 kHz: the server resamples), come back as text."""
    said = (
        "The library opens at nine in the morning and closes at six in the evening. "
        "Children can borrow up to five books at a time."
    )
    speech = asyncio.run(synthesize(server.wyoming_port, said, PIPER))
    reply = asyncio.run(transcribe(server.wyoming_port, speech.pcm, rate=speech.rate))
    assert reply.error is None, reply.error
    assert reply.types[0] == "transcript-start"
    assert reply.types[-1] == "transcript-stop"
    text = transcript(reply)
    assert word_error_rate(said, text) <= WER_BOUND, text
