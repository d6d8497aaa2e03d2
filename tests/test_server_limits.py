"""Request limits over real HTTP: concurrency (503), per-key rate (429), body size (413)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from live import LiveServer

SPEECH = "/v1/audio/speech"
CONCURRENCY = 4
BURST_SIZE = 50
MAX_BODY_BYTES = 1_048_576  # VOXSERVE_MAX_BODY_BYTES default
RATE_KEYS = ("rate-key-a", "rate-key-b", "rate-key-c")
WARMUP_KEY = "rate-key-warmup"


def medium_text(i: int) -> str:
    """A few seconds of speech, different per request so no two share work."""
    return f"This is request number {i} of the burst. The quick brown fox jumps over the lazy dog."


def speech_body(text: str) -> dict[str, object]:
    return {"input": text, "response_format": "wav", "stream": False}


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def assert_wav(response: httpx.Response) -> int:
    """200 with a WAV that decodes to sound; returns its length in samples."""
    assert response.status_code == 200, response.text
    samples, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 22050
    assert float(abs(samples).max()) > 0.05
    return len(samples)


@pytest.fixture(scope="module")
def absent_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nokeys") / "absent"


@pytest.fixture(scope="module")
def busy_server(absent_key_file: Path) -> Iterator[LiveServer]:
    env = {
        "VOXSERVE_MAX_CONCURRENCY": str(CONCURRENCY),
        "VOXSERVE_CACHE": "off",  # every request really synthesizes
        "VOXSERVE_API_KEY_FILE": str(absent_key_file),
    }
    with LiveServer(env) as live:
        yield live


@pytest.fixture(scope="module")
def rate_server(absent_key_file: Path) -> Iterator[LiveServer]:
    env = {
        "VOXSERVE_RATE_LIMIT": "1",
        "VOXSERVE_RATE_BURST": "2",
        "VOXSERVE_API_KEYS": ",".join((*RATE_KEYS, WARMUP_KEY)),
        "VOXSERVE_API_KEY_FILE": str(absent_key_file),
    }
    with LiveServer(env) as live:
        # Put the short request in the cache with a key of its own, so that in the tests
        # every request is answered in milliseconds, far inside the 1 s refill time.
        warm = httpx.post(
            live.url + SPEECH,
            json=speech_body("Hi."),
            headers={"X-API-Key": WARMUP_KEY},
            timeout=60,
        )
        assert warm.status_code == 200, warm.text
        yield live


async def fire_at_once(url: str, count: int) -> list[httpx.Response]:
    """``count`` speech requests started together, each on its own connection."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:
        return list(
            await asyncio.gather(
                *(client.post(SPEECH, json=speech_body(medium_text(i))) for i in range(count))
            )
        )


# -- concurrency ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def burst(busy_server: LiveServer) -> list[httpx.Response]:
    """The responses to one burst of 50 simultaneous requests (shared by the tests below)."""
    return asyncio.run(fire_at_once(busy_server.url, BURST_SIZE))


def test_burst_of_50_gets_audio_or_503_with_retry_after(burst: list[httpx.Response]) -> None:
    """50 simultaneous requests against 4 slots: each is either real audio or a clean 503.

    At least 4 succeed (the first 4 to arrive hold the slots until their audio is done).
    At least one is refused: each admitted request synthesizes seconds of speech, one
    inference at a time, and all 50 have arrived long before the first is done.
    """
    ok = [r for r in burst if r.status_code == 200]
    busy = [r for r in burst if r.status_code == 503]
    assert len(ok) + len(busy) == BURST_SIZE, sorted({r.status_code for r in burst})
    for response in ok:
        assert assert_wav(response) > 22050 * 2  # two sentences: seconds of speech
    for response in busy:
        assert int(response.headers["retry-after"]) >= 1
        error = error_of(response)
        assert error["type"] == "server_error"
        assert error["code"] == "overloaded"
        assert str(CONCURRENCY) in str(error["message"])
    assert len(ok) >= CONCURRENCY
    assert len(busy) >= 1


def test_every_slot_is_free_again_after_the_burst(
    busy_server: LiveServer, burst: list[httpx.Response]
) -> None:
    """Exactly ``CONCURRENCY`` requests at once all succeed: the burst leaked no slot."""
    assert any(r.status_code == 503 for r in burst)  # the slots really were all taken
    # One round trip first, so the server's event loop has finished unwinding the burst.
    assert httpx.get(busy_server.url + "/readyz", timeout=10).status_code == 200
    responses = asyncio.run(fire_at_once(busy_server.url, CONCURRENCY))
    assert [r.status_code for r in responses] == [200] * CONCURRENCY
    for response in responses:
        assert_wav(response)
    assert "Traceback" not in busy_server.log


# -- rate -------------------------------------------------------------------------------------


def test_third_rapid_request_is_429_with_retry_after(rate_server: LiveServer) -> None:
    """Burst 2 at 1 per second: two quick requests spend the bucket, the third waits."""
    headers = {"Authorization": f"Bearer {RATE_KEYS[2]}"}
    with httpx.Client(base_url=rate_server.url, timeout=60, headers=headers) as client:
        first, second, third = (client.post(SPEECH, json=speech_body("Hi.")) for _ in range(3))
        assert_wav(first)
        assert_wav(second)
        assert third.status_code == 429, third.text
        assert int(third.headers["retry-after"]) >= 1
        error = error_of(third)
        assert error["type"] == "rate_limit_error"
        assert error["code"] == "rate_limit_exceeded"


def test_exhausting_one_key_does_not_limit_another(rate_server: LiveServer) -> None:
    with httpx.Client(base_url=rate_server.url, timeout=60) as client:
        a = {"X-API-Key": RATE_KEYS[0]}
        statuses = [
            client.post(SPEECH, json=speech_body("Hi."), headers=a).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        b = {"X-API-Key": RATE_KEYS[1]}
        assert_wav(client.post(SPEECH, json=speech_body("Hi."), headers=b))


def test_rate_limit_does_not_apply_to_listing_routes(rate_server: LiveServer) -> None:
    headers = {"X-API-Key": RATE_KEYS[0]}
    with httpx.Client(base_url=rate_server.url, timeout=60, headers=headers) as client:
        assert [client.get("/v1/models").status_code for _ in range(5)] == [200] * 5


# -- body size, chunked ---------------------------------------------------------------------


def chunked_json(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A ``{"input": "aaa..."}`` body of ``total`` bytes, sent as a generator (chunked)."""
    head, tail = b'{"input": "', b'"}'
    remaining = total - len(head) - len(tail)
    yield head
    while remaining > 0:
        size = min(chunk, remaining)
        yield b"a" * size
        remaining -= size
    yield tail


@pytest.mark.parametrize("path", [SPEECH, "/api/tts"])
def test_chunked_body_over_the_limit_is_413(busy_server: LiveServer, path: str) -> None:
    """No Content-Length to check up front: the limit must hold while the body is read."""
    response = httpx.post(
        busy_server.url + path,
        content=chunked_json(MAX_BODY_BYTES + 64 * 1024),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413, response.text
    error = error_of(response)
    assert error["code"] == "request_too_large"
    assert str(MAX_BODY_BYTES) in str(error["message"])


def test_chunked_body_under_the_limit_is_served(busy_server: LiveServer) -> None:
    def pieces() -> Iterator[bytes]:
        yield b'{"input": "Sent in '
        yield b'pieces.", "response_format": "wav", '
        yield b'"stream": false}'

    response = httpx.post(
        busy_server.url + SPEECH,
        content=pieces(),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_wav(response)
