"""Streaming over real HTTP: audio leaves before synthesis ends, hang-ups stop the work.

One real server per module (tests/live.py) with the cache off, so every request is
synthesized and no reply is a replay of a stored file.

The hang-up test needs to see work the server does *not* do. It reads two things from
the metrics listener: ``voxserve_batch_size_sum`` (sentences that reached the model,
summed over inference calls) and the process's own ``process_cpu_seconds_total``. CPU
time says when the server has gone idle, whatever the load from other processes on the
machine; the sentence count then says how much was synthesized.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import httpx
import pytest
import soundfile

from live import LiveServer, wait_until_idle

VOICE_ID = "en_US-joe-medium"
RATE = 22_050
DETERMINISTIC: dict[str, Any] = {"noise_scale": 0, "noise_w": 0}

#: Three short sentences first: the stream queues three sentences at once and the
#: scheduler may run them as one batch, so the first bytes can wait for all three.
TWELVE_SENTENCES = (
    "Good morning. All aboard. We sail now. "
    "The ferry left the harbor at dawn. Gulls followed it past the lighthouse. "
    "A boy counted the waves from the deck. His sister read a book about whales. "
    "The captain announced a change of course. Fog had settled over the islands. "
    "A second ship appeared on the horizon. Its horn sounded twice across the water. "
    "By noon they reached the little port."
)
FORTY_SENTENCES = " ".join(f"Step {n}." for n in range(1, 41))
CONCURRENT_TEXTS = [
    "Apples grow well in cold valleys. Farmers pick them in autumn.",
    "The museum opens a new wing today.",
    "Please close the door quietly. The baby is asleep.",
    "Bicycles line the street outside the station.",
    "Our train was delayed by snow. We arrived after midnight.",
    "Fresh bread smells wonderful in the morning.",
    "The orchestra tuned their instruments. Then the hall went silent.",
    "Turn left at the second bridge.",
]

SPEECH_PATH = "/v1/audio/speech"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer({"VOXSERVE_CACHE": "off"}) as live:
        yield live


@dataclass(frozen=True)
class Timed:
    """A streamed response as the client saw it."""

    first: float
    """Seconds from sending the request to the first body bytes."""
    last: float
    """Seconds from sending the request to the last body bytes."""
    chunks: int
    """Body reads that returned bytes."""
    data: bytes


def stream_timed(server: LiveServer, body: dict[str, Any]) -> Timed:
    pieces: list[bytes] = []
    first = last = 0.0
    with httpx.Client(timeout=300) as client:
        started = time.perf_counter()
        with client.stream("POST", server.url + SPEECH_PATH, json=body) as response:
            assert response.status_code == 200, response.read()
            for piece in response.iter_raw():
                if not piece:
                    continue
                last = time.perf_counter() - started
                first = first or last
                pieces.append(piece)
    return Timed(first, last, len(pieces), b"".join(pieces))


def decoded_samples(data: bytes) -> tuple[int, int]:
    """(samples, sample rate) of an encoded file, decoded with FFmpeg."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        return sum(f.samples for f in container.decode(stream)), stream.codec_context.sample_rate


SENTENCES_INFERRED = f'voxserve_batch_size_sum{{voice="{VOICE_ID}"}}'
QUEUE_DEPTH = f'voxserve_queue_depth{{voice="{VOICE_ID}"}}'


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_first_chunk_arrives_long_before_the_last(
    fmt: str, server: LiveServer, record_property: Any
) -> None:
    """Causal streaming: the first sentence is sent while the other eleven are made.

    A server that synthesized everything before sending would deliver the first and the
    last bytes moments apart (first/last near 1). Here the first bytes wait for the three
    short opening sentences, about a tenth of the work, so first/last stays far below
    0.5 even when other processes slow the machine down unevenly.
    """
    timed = stream_timed(server, {"input": TWELVE_SENTENCES, "response_format": fmt})
    record_property(f"{fmt}_first_chunk_s", round(timed.first, 3))
    record_property(f"{fmt}_last_chunk_s", round(timed.last, 3))

    assert timed.first < 0.5 * timed.last, (timed.first, timed.last)
    assert timed.chunks >= 3
    samples, rate = decoded_samples(timed.data)
    assert rate == RATE
    assert samples > 12 * RATE  # twelve sentences, over a second each on average


def test_hang_up_after_first_chunk_stops_synthesis_and_server_stays_healthy(
    server: LiveServer, record_property: Any
) -> None:
    """A client that leaves after the first chunk costs a few sentences, not forty.

    First a full 40-sentence synthesis calibrates the observable: the model counts 40
    sentences. Then the same text again, hung up after the first chunk: the stream keeps
    only STREAM_LOOKAHEAD + 1 = 3 sentences queued and the server notices the hang-up at
    its next write, so well under half of the 40 may reach the model, even counting the
    one-sentence request sent right after (which must succeed).
    """
    body = {"input": FORTY_SENTENCES, "response_format": "wav", **DETERMINISTIC}
    start = wait_until_idle(server, VOICE_ID)
    full = stream_timed(server, body)
    after_full = wait_until_idle(server, VOICE_ID)
    full_sentences = after_full[SENTENCES_INFERRED] - start[SENTENCES_INFERRED]
    assert full_sentences == 40
    assert decoded_samples(full.data)[0] > 40 * RATE // 2
    record_property("forty_sentences_s", round(full.last, 3))

    with (
        httpx.Client(timeout=300) as client,
        client.stream("POST", server.url + SPEECH_PATH, json=body) as response,
    ):
        assert response.status_code == 200
        first = next(piece for piece in response.iter_raw() if piece)
    assert first.startswith(b"RIFF")

    short = httpx.post(
        server.url + SPEECH_PATH,
        json={"input": "Still here.", "response_format": "wav", "stream": False},
        timeout=300,
    )
    assert short.status_code == 200
    assert soundfile.info(io.BytesIO(short.content)).frames > RATE // 4

    after_hang_up = wait_until_idle(server, VOICE_ID)
    sentences = after_hang_up[SENTENCES_INFERRED] - after_full[SENTENCES_INFERRED]
    record_property("sentences_after_hang_up", sentences)
    assert 1 <= sentences < full_sentences / 2, sentences
    assert after_hang_up[QUEUE_DEPTH] == 0
    assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200
    assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200
    assert "Traceback" not in server.log


def test_eight_concurrent_streams_each_get_their_own_complete_audio(server: LiveServer) -> None:
    """Eight different texts at once: each reply decodes to exactly its own length.

    Lengths come from the model's per-phoneme durations, which do not depend on what a
    sentence is batched with, so each concurrent reply must have the same number of
    samples as its text synthesized alone; a mixed-up or truncated stream would not.
    """
    formats = ["wav", "pcm"] * 4

    async def one(client: httpx.AsyncClient, text: str, fmt: str) -> bytes:
        body = {"input": text, "response_format": fmt, **DETERMINISTIC}
        async with client.stream("POST", server.url + SPEECH_PATH, json=body) as response:
            assert response.status_code == 200
            return b"".join([piece async for piece in response.aiter_raw()])

    async def all_at_once() -> list[bytes]:
        async with httpx.AsyncClient(timeout=300) as client:
            return await asyncio.gather(
                *(one(client, t, f) for t, f in zip(CONCURRENT_TEXTS, formats, strict=True))
            )

    replies = asyncio.run(all_at_once())

    for text, fmt, data in zip(CONCURRENT_TEXTS, formats, replies, strict=True):
        alone = httpx.post(
            server.url + SPEECH_PATH,
            json={"input": text, "response_format": "wav", "stream": False, **DETERMINISTIC},
            timeout=300,
        )
        expected = soundfile.info(io.BytesIO(alone.content)).frames
        if fmt == "pcm":
            samples = len(data) // 2
        else:
            samples, rate = decoded_samples(data)
            assert rate == RATE
        assert samples == expected, (text, fmt)
