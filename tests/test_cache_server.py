"""The cache as a client sees it: real servers (tests/live.py) with the memory, disk and
Redis backends, and a real ``redis-server`` (tests/redis_server.py) that the fault test
kills, freezes and restarts under a serving process.

Most requests use the voice's default noise, so two syntheses of the same text give
different bytes: a response byte-identical to an earlier one came from the cache, and a
different one was synthesized afresh. ``voxserve_characters_total`` grows only when the
server synthesizes, which tells the same from the metrics side. The fault test asks for
deterministic audio (``noise_scale=0, noise_w=0``) instead, so that every answer, cached
or not, must equal the reference bytes.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from typing import Any

import av
import httpx
import numpy as np
import pytest
import soundfile
from prometheus_client.parser import text_string_to_metric_families

from live import LiveServer
from redis_server import RedisServer

VOICE_ID = "en_US-joe-medium"
ROUTE = "/v1/audio/speech"
BACKENDS = ("memory", "disk", "redis")
#: (stream, response_format) of the request shapes every backend is checked with.
SHAPES = [
    pytest.param(False, "wav", id="whole-wav"),
    pytest.param(True, "mp3", id="streamed-mp3"),
]
#: About 7 s of speech: its streamed mp3 (64 kbit/s) spans several of the 32 KB pieces
#: a hit is replayed in.
TWO_SENTENCES = (
    "The library will be closed on Monday for the public holiday. Books that are due "
    "that day can be returned on Tuesday without a fine."
)
#: How long the fault test waits at most for the breaker's back-off (it doubles per
#: failed probe, up to 30 s) before hits must resume.
RECOVERY_S = 45.0
#: GuardedCache logs a failing backend at most once per this many seconds.
LOG_INTERVAL_S = 30.0


def server_env(**extra: str) -> dict[str, str]:
    return {"VOXSERVE_ESPEAK": "false", "VOXSERVE_DEVICE": "cpu", **extra}


def speak(
    server: LiveServer,
    text: str,
    *,
    stream: bool = False,
    fmt: str = "wav",
    no_cache: bool = False,
    **fields: Any,
) -> httpx.Response:
    """POST /v1/audio/speech and read the whole body; 200 is asserted."""
    body = {"model": "tts-1", "input": text, "voice": "alloy", "response_format": fmt,
            "stream": stream, **fields}  # fmt: skip
    headers = {"Cache-Control": "no-cache"} if no_cache else {}
    response = httpx.post(server.url + ROUTE, json=body, headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    return response


def metric(server: LiveServer, name: str, **labels: str) -> float:
    """The current value of one sample on the server's /metrics (0 when absent)."""
    text = httpx.get(server.metrics_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def characters(server: LiveServer) -> float:
    return metric(server, "voxserve_characters_total", voice=VOICE_ID)


def cache_count(server: LiveServer, backend: str, result: str) -> float:
    return metric(server, "voxserve_cache_requests_total", backend=backend, result=result)


def decoded_samples(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream))


def unique(text: str) -> str:
    """``text`` with a tag no other test (or earlier run against a shared store) uses."""
    return f"{text} Reference {uuid.uuid4().int % 10_000}."


# -- servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def redis_prefix() -> str:
    return f"voxserve-test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def redis_cached_server(redis_server: RedisServer, redis_prefix: str) -> Iterator[LiveServer]:
    env = server_env(
        VOXSERVE_CACHE="redis", REDIS_URL=redis_server.url, VOXSERVE_CACHE_PREFIX=redis_prefix
    )
    with LiveServer(env) as server:
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def backend_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, LiveServer]]:
    """(backend name, a server using that cache), one server per backend."""
    kind: str = request.param
    if kind == "redis":
        yield kind, request.getfixturevalue("redis_cached_server")
        return
    env = server_env(VOXSERVE_CACHE=kind)
    if kind == "disk":
        env["VOXSERVE_CACHE_DIR"] = str(tmp_path_factory.mktemp("disk-cache"))
    with LiveServer(env) as server:
        yield kind, server


# -- every backend ------------------------------------------------------------------------


@pytest.mark.parametrize(("stream", "fmt"), SHAPES)
def test_miss_then_identical_hit_then_no_cache_synthesizes_afresh_and_refreshes_the_entry(
    backend_server: tuple[str, LiveServer], stream: bool, fmt: str
) -> None:
    """The same sequence, miss, hit, bypass, hit, seen in bodies, X-Cache and metrics."""
    kind, server = backend_server
    counts = {r: cache_count(server, kind, r) for r in ("hit", "miss", "bypass")}
    text = unique("The harbour lights came on one by one.")
    first = speak(server, text, stream=stream, fmt=fmt)
    assert first.headers["x-cache"] == "miss"
    spoken = characters(server)

    hit = speak(server, text, stream=stream, fmt=fmt)
    assert hit.headers["x-cache"] == "hit"
    assert hit.content == first.content
    assert characters(server) == spoken  # nothing was synthesized for the hit

    fresh = speak(server, text, stream=stream, fmt=fmt, no_cache=True)
    assert fresh.headers["x-cache"] == "bypass"
    assert fresh.content != first.content  # new noise: a new synthesis
    assert characters(server) > spoken
    assert decoded_samples(fresh.content) > 0

    again = speak(server, text, stream=stream, fmt=fmt)
    assert again.headers["x-cache"] == "hit"
    assert again.content == fresh.content  # the bypass stored its result

    changes = {r: cache_count(server, kind, r) - n for r, n in counts.items()}
    assert changes == {"hit": 2, "miss": 1, "bypass": 1}


def test_streamed_hit_arrives_chunked_in_pieces_and_decodes_like_the_miss(
    backend_server: tuple[str, LiveServer],
) -> None:
    _, server = backend_server
    text = unique(TWO_SENTENCES)
    body = {"input": text, "voice": "alloy", "response_format": "mp3", "stream": True}
    results = []
    for _ in range(2):
        with httpx.stream("POST", server.url + ROUTE, json=body, timeout=120) as response:
            assert response.status_code == 200
            pieces = list(response.iter_raw())
        results.append((response, pieces))
    (miss, miss_pieces), (hit, hit_pieces) = results
    assert miss.headers["x-cache"] == "miss"
    assert hit.headers["x-cache"] == "hit"
    data = b"".join(hit_pieces)
    assert data == b"".join(miss_pieces)
    assert hit.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in hit.headers
    assert len(data) > 32 * 1024
    assert len(hit_pieces) >= 2
    assert decoded_samples(data) == decoded_samples(b"".join(miss_pieces)) > 22_050


def test_whole_and_streamed_responses_of_one_text_are_cached_apart(
    redis_cached_server: LiveServer,
) -> None:
    """A streamed WAV's header differs from a whole one, so neither may answer the other."""
    server = redis_cached_server
    text = unique("Please mind the gap between the train and the platform.")
    assert speak(server, text, stream=False).headers["x-cache"] == "miss"
    streamed = speak(server, text, stream=True)
    assert streamed.headers["x-cache"] == "miss"
    assert streamed.content[4:8] == b"\xff\xff\xff\xff"  # unknown-size streaming header
    assert speak(server, text, stream=True).headers["x-cache"] == "hit"
    assert speak(server, text, stream=False).headers["x-cache"] == "hit"


# -- replicas sharing Redis ---------------------------------------------------------------


def test_two_servers_sharing_redis_serve_each_others_entries(
    redis_server: RedisServer, redis_prefix: str, redis_cached_server: LiveServer
) -> None:
    env = server_env(
        VOXSERVE_CACHE="redis", REDIS_URL=redis_server.url, VOXSERVE_CACHE_PREFIX=redis_prefix
    )
    a = redis_cached_server
    with LiveServer(env) as b:
        text = unique("Your order has been shipped.")
        made_by_a = speak(a, text)
        assert made_by_a.headers["x-cache"] == "miss"
        on_b = speak(b, text)
        assert on_b.headers["x-cache"] == "hit"
        assert on_b.content == made_by_a.content
        assert characters(b) == 0  # B has synthesized no request at all

        streamed_by_b = speak(b, text, stream=True, fmt="mp3")
        assert streamed_by_b.headers["x-cache"] == "miss"
        on_a = speak(a, text, stream=True, fmt="mp3")
        assert on_a.headers["x-cache"] == "hit"
        assert on_a.content == streamed_by_b.content


# -- faults -------------------------------------------------------------------------------


def pcm_of(data: bytes, *, streamed: bool) -> bytes:
    """The 16-bit samples of a whole (soundfile) or streamed (44-byte header) WAV."""
    if streamed:
        assert data[:4] == b"RIFF"
        return data[44:]
    samples, _ = soundfile.read(io.BytesIO(data), dtype="int16")
    return np.asarray(samples).tobytes()


def test_redis_killed_frozen_and_restarted_under_load_never_fails_a_request(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Every request answers 200 with the reference audio while Redis is killed, frozen
    with SIGSTOP and restarted; the failure is logged once per interval, not per request;
    and after each recovery the cache hits again."""
    deterministic = {"noise_scale": 0, "noise_w": 0}
    text = "The quick brown fox jumps over the lazy dog."
    with (
        RedisServer() as redis_server,
        LiveServer(server_env(VOXSERVE_CACHE="redis", REDIS_URL=redis_server.url)) as server,
    ):

        def check(*, stream: bool) -> str:
            response = speak(server, text, stream=stream, **deterministic)
            assert pcm_of(response.content, streamed=stream) == reference
            return str(response.headers["x-cache"])

        def until_hit() -> None:
            """Send requests (each must still be correct) until one is a hit."""
            deadline = time.monotonic() + RECOVERY_S
            while time.monotonic() < deadline:
                if check(stream=False) == "hit":
                    return
                time.sleep(0.3)
            raise AssertionError(f"no cache hit within {RECOVERY_S}s of Redis coming back")

        first = speak(server, text, **deterministic)
        assert first.headers["x-cache"] == "miss"
        reference = pcm_of(first.content, streamed=False)
        assert check(stream=False) == "hit"
        assert check(stream=True) == "miss"
        assert check(stream=True) == "hit"
        assert "failed" not in server.log

        faulty: list[str] = []
        fault_started = time.monotonic()
        redis_server.kill()
        faulty += [check(stream=n % 2 == 1) for n in range(4)]
        redis_server.restart()  # empty: the entries died with it
        until_hit()

        redis_server.pause()
        try:
            faulty += [check(stream=n % 2 == 1) for n in range(4)]
        finally:
            redis_server.resume()
        until_hit()
        elapsed = time.monotonic() - fault_started

        assert faulty == ["miss"] * 8
        failed = [line for line in server.log.splitlines() if "serving without it" in line]
        assert failed, f"no cache failure was logged:\n{server.log}"
        assert all("cache redis" in line for line in failed)
        assert len(failed) <= 1 + int(elapsed // LOG_INTERVAL_S), failed
        assert len(failed) < len(faulty)
        assert any("ConnectionError" in line for line in failed)
