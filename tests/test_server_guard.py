"""Overload and abuse over real HTTP, on the fake engine: admission by estimated work,
stalled uploads, clients that hang up or stop reading, the queue bound, the drain.

Each test runs the real server (uvicorn and every middleware) in a thread
(fake_server.FakeServer), so it starts in milliseconds; the same behaviour on the real
model, at scale, is measured by the reliability suite (reliability/).
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
from typing import Any

import httpx
import pytest
import soundfile as sf

from fake_server import FakeServer, fake_settings, wait_until
from fakes import FakeEngine

pytestmark = pytest.mark.inprocess


SPEECH = "/v1/audio/speech"


def sentences(count: int, words: str = "is spoken here") -> str:
    return " ".join(f"Sentence number {i} {words}." for i in range(count))


def request_for(route: str, text: str) -> dict[str, Any]:
    """Keyword arguments of httpx.post for a whole (non-streamed) request on ``route``."""
    if route == SPEECH:
        return {"json": {"input": text, "response_format": "wav", "stream": False}}
    if route == "/api/tts":
        return {"json": {"text": text}}
    return {"data": {"INPUT_TEXT": text}}


def raw_request(
    url: str, path: str, body: bytes, *, send: int | None = None, receive_buffer: int = 0
) -> socket.socket:
    """A POST on a raw socket, sending only the first ``send`` bytes of the body."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[: len(body) if send is None else send])
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


# -- abandoned requests -----------------------------------------------------------------------


@pytest.mark.parametrize("route", [SPEECH, "/api/tts", "/process"])
def test_a_whole_request_whose_client_hangs_up_stops_within_a_sentence(route: str) -> None:
    """30 sentences at 50 ms each; the client gives up after 0.3 s. Its ticket is back
    within a second, and most of its sentences never reach the engine."""
    engine = FakeEngine(seconds_per_call=0.05, batching=False)
    with FakeServer(engine, fake_settings()) as server:
        admission = server.responder.admission
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url + route, **request_for(route, sentences(30)), timeout=0.3)
        took = wait_until(lambda: admission.admitted == 0, timeout=2, what="the ticket")
        assert took < 1.0
        inferred = len(engine.inferred())
        assert 0 < inferred < 15
        assert server.metric("voxserve_requests_abandoned_total", reason="disconnected") == 1
        assert server.metric("voxserve_admitted_work_seconds") == 0.0  # given back at once
        # The server goes on serving.
        assert httpx.post(server.url + route, **request_for(route, "Hi."), timeout=10).is_success


def test_a_stream_whose_client_hangs_up_stops_within_a_sentence() -> None:
    engine = FakeEngine(seconds_per_call=0.05, batching=False)
    with FakeServer(engine, fake_settings()) as server:
        body = {"input": sentences(30), "response_format": "pcm", "stream": True}
        with httpx.stream("POST", server.url + SPEECH, json=body, timeout=10) as response:
            assert response.status_code == 200
            next(response.iter_raw())
        wait_until(lambda: server.responder.admission.admitted == 0, timeout=2, what="ticket")
        assert len(engine.inferred()) < 15


# -- slow clients ---------------------------------------------------------------------------


def test_stalled_uploads_hold_no_slot_and_get_408() -> None:
    """One concurrency slot; three clients send half a body and go quiet. A real request
    is still served at once, and each stalled client gets 408 when its time is up."""
    settings = fake_settings(max_concurrency=1, body_timeout_seconds=1.0)
    with FakeServer(FakeEngine(), settings) as server:
        body = json.dumps({"input": "Never finished."}).encode()
        stalled = [raw_request(server.url, SPEECH, body, send=5) for _ in range(3)]
        ok = httpx.post(server.url + SPEECH, json={"input": "Hi.", "stream": False}, timeout=5)
        assert ok.status_code == 200
        for sock in stalled:
            status, headers, payload = read_response(sock)
            sock.close()
            assert status == 408
            assert headers["connection"] == "close"
            error = json.loads(payload)["error"]
            assert (error["code"], error["param"]) == ("request_timeout", "body")
        assert server.metric("voxserve_requests_abandoned_total", reason="body_timeout") == 3


def test_a_client_that_stops_reading_is_dropped_and_its_work_cancelled() -> None:
    """Sentences of 3 MB of PCM each; the client reads nothing. Once the socket buffers
    are full, the send times out and the remaining sentences are cancelled."""
    engine = FakeEngine(samples_per_char=4000)
    settings = fake_settings(send_timeout_seconds=0.5)
    with FakeServer(engine, settings) as server:
        text = sentences(20, "is long enough to fill the buffers of a socket quickly")
        body = json.dumps({"input": text, "response_format": "pcm", "stream": True}).encode()
        sock = raw_request(server.url, SPEECH, body, receive_buffer=4096)
        try:
            wait_until(
                lambda: (
                    server.metric("voxserve_requests_abandoned_total", reason="stopped_reading")
                    == 1
                ),
                timeout=20,
                what="the stalled send to time out",
            )
            wait_until(lambda: server.responder.admission.admitted == 0, timeout=2, what="ticket")
        finally:
            sock.close()
        assert len(engine.inferred()) < 20


# -- admission ------------------------------------------------------------------------------


def test_admission_refuses_by_estimated_wait_and_says_when_to_retry() -> None:
    """One lane; a request of about 5 s of estimated work is admitted on the idle machine
    (the bound is on waiting, not size); another like it would wait that long: 503 at once.
    A short one meanwhile is admitted: it is due first, so it waits for none of that."""
    engine = FakeEngine(seconds_per_call=0.2)
    with FakeServer(engine, fake_settings(max_wait_seconds=1.0)) as server:
        admission = server.responder.admission
        long_text = sentences(5, "a" * 350)  # ~1,800 characters: ~5.4 s at the default pace
        first: dict[str, httpx.Response] = {}
        thread = threading.Thread(
            target=lambda: first.update(
                r=httpx.post(server.url + SPEECH, **request_for(SPEECH, long_text), timeout=30)
            )
        )
        thread.start()
        wait_until(lambda: admission.admitted == 1, timeout=5, what="the first request")
        refused = httpx.post(server.url + SPEECH, **request_for(SPEECH, long_text), timeout=5)
        error = assert_error(refused, 503, "overloaded")
        assert "wait" in error["message"]
        assert int(refused.headers["retry-after"]) >= 2
        assert httpx.post(server.url + SPEECH, **request_for(SPEECH, "Hi."), timeout=5).is_success
        assert admission.admitted == 1  # the first is still being synthesized
        thread.join()
        assert first["r"].status_code == 200
        # The ticket is closed as the response ends, just after its last byte is sent.
        wait_until(lambda: admission.admitted == 0, timeout=5, what="the ticket to be closed")
        assert (admission.admitted, admission.work, admission.queued) == (0, 0.0, 0)
        assert httpx.post(server.url + SPEECH, **request_for(SPEECH, "Hi."), timeout=5).is_success
        assert server.metric("voxserve_admission_refused_total") == 1


def test_a_full_queue_refuses_before_the_status_line_never_after() -> None:
    """VOXSERVE_MAX_QUEUE=4, six 12-sentence streams at once: every stream is either
    refused with 503 or complete; none is a 200 that ends early."""
    engine = FakeEngine(seconds_per_call=0.02)
    settings = fake_settings(max_queue=4)
    text = sentences(12)
    with FakeServer(engine, settings) as server:
        alone = httpx.post(
            server.url + SPEECH, json={"input": text, "response_format": "pcm"}, timeout=30
        ).content

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                body = {"input": text, "response_format": "pcm", "stream": True}
                posts = (client.post(SPEECH, json=body) for _ in range(6))
                return list(await asyncio.gather(*posts))

        responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 503}, statuses
    for response in responses:
        if response.status_code == 200:
            assert response.content == alone
        else:
            assert_error(response, 503, "overloaded")


# -- limits on what text becomes ----------------------------------------------------------------


def test_digits_that_expand_past_the_spoken_limit_are_413_naming_the_limit() -> None:
    with FakeServer(FakeEngine(), fake_settings(max_spoken_chars=2000)) as server:
        text = "1234567 " * 100  # 800 characters; about 7,000 spoken
        response = httpx.post(server.url + SPEECH, json={"input": text}, timeout=10)
        error = assert_error(response, 413, "spoken_input_too_long")
        assert error["param"] == "input"
        assert "2000" in error["message"]
        assert "VOXSERVE_MAX_SPOKEN_CHARS" in error["message"]
        assert server.responder.admission.admitted == 0


@pytest.mark.parametrize("spool_bytes", [0, 1 << 30])
def test_whole_responses_are_the_same_spooled_to_a_file_or_kept_in_memory(
    spool_bytes: int,
) -> None:
    """A whole WAV past the spool size is streamed from its file with a Content-Length;
    its samples are the stream's, and its header has the real sizes."""
    with FakeServer(FakeEngine(), fake_settings(spool_bytes=spool_bytes)) as server:
        text = sentences(8)
        whole = httpx.post(server.url + SPEECH, **request_for(SPEECH, text), timeout=10)
        pcm = httpx.post(
            server.url + SPEECH, json={"input": text, "response_format": "pcm"}, timeout=10
        )
    assert whole.status_code == 200
    assert int(whole.headers["content-length"]) == len(whole.content)
    samples, rate = sf.read(io.BytesIO(whole.content), dtype="int16")
    assert rate == 8000
    assert samples.tobytes() == pcm.content


# -- the end of a drain ---------------------------------------------------------------------


def test_the_end_of_the_drain_answers_503_or_ends_the_stream_cleanly() -> None:
    """Shutdown with 0.5 s to drain while a whole request and a stream are still far from
    done: the whole request gets a JSON 503, the stream ends with a proper last chunk."""
    engine = FakeEngine(seconds_per_call=0.1)
    server = FakeServer(engine, fake_settings(), graceful_shutdown=0.5)
    results: dict[str, Any] = {}

    def whole() -> None:
        results["whole"] = httpx.post(
            server.url + SPEECH, **request_for(SPEECH, sentences(40)), timeout=30
        )

    def stream() -> None:
        body = {"input": sentences(40), "response_format": "pcm", "stream": True}
        with httpx.stream("POST", server.url + SPEECH, json=body, timeout=30) as response:
            results["stream_status"] = response.status_code
            results["stream_bytes"] = sum(len(c) for c in response.iter_raw())

    with server:
        threads = [threading.Thread(target=whole), threading.Thread(target=stream)]
        for thread in threads:
            thread.start()
        wait_until(lambda: server.responder.admission.admitted == 2, timeout=5, what="both")
        server.stop()
        for thread in threads:
            thread.join(timeout=10)
    assert_error(results["whole"], 503, "shutting_down")
    assert results["whole"].headers["retry-after"] == "1"
    assert results["stream_status"] == 200
    full = sum(len(engine.render(f"Sentence number {i} is spoken here.")) for i in range(40))
    assert 0 < results["stream_bytes"] < full * 2  # 16-bit PCM
