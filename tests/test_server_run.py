"""Graceful shutdown of the real server process (server/run.py)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from live import LiveServer, free_port, terminate
from voxserve.errors import ConfigError
from voxserve.server.run import QuietThread, bind, serve, url
from voxserve.settings import Settings

#: uvicorn re-raises the signal it handled once shutdown is complete, so outside a
#: container (where PID 1 ignores it) a graceful stop ends "killed by SIGTERM".
CLEAN_EXIT = (0, -signal.SIGTERM)
SPEECH = "/v1/audio/speech"


def test_drain_delay_keeps_answering_503_on_readyz_before_the_listener_closes() -> None:
    """With VOXSERVE_DRAIN_DELAY_SECONDS, SIGTERM first turns readiness to 503 while the
    server still answers (so a load balancer can see it), then the process exits."""
    with LiveServer(env={"VOXSERVE_ESPEAK": "false", "VOXSERVE_DRAIN_DELAY_SECONDS": "2"}) as live:
        assert live.process is not None
        live.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        draining = httpx.get(live.url + "/readyz", timeout=5)
        alive = httpx.get(live.url + "/healthz", timeout=5)
        assert (draining.status_code, draining.json()) == (503, {"status": "draining"})
        assert alive.status_code == 200
        assert live.process.wait(timeout=20) in CLEAN_EXIT
        assert "readiness now 503, closing the listener in 2s" in live.log


def test_without_a_drain_delay_sigterm_exits_at_once() -> None:
    with LiveServer(env={"VOXSERVE_ESPEAK": "false"}) as live:
        assert live.process is not None
        started = time.monotonic()
        live.process.send_signal(signal.SIGTERM)
        assert live.process.wait(timeout=20) in CLEAN_EXIT
        assert time.monotonic() - started < 5
        assert "draining (readiness now 503)" in live.log


# -- start-up ----------------------------------------------------------------------------


def test_start_up_says_listening_once_it_listens_with_both_urls() -> None:
    """One "Started server process" (the metrics listener's is not repeated), no uvicorn
    URL, and "listening" with the API's and the metrics' URLs only after "ready" (the
    Wyoming listener's own line between them)."""
    with LiveServer(env={"VOXSERVE_ESPEAK": "false"}) as live:
        deadline = time.monotonic() + 20
        while "voxserve listening on" not in live.log:
            assert time.monotonic() < deadline, live.log
            time.sleep(0.05)
        messages = [json.loads(line)["message"] for line in live.log.splitlines() if line]
    (ready,) = [i for i, m in enumerate(messages) if m.startswith("voxserve ready in")]
    (listening,) = [i for i, m in enumerate(messages) if m.startswith("voxserve listening on")]
    (wyoming,) = [i for i, m in enumerate(messages) if m.startswith("Wyoming")]
    assert ready < wyoming < listening
    assert messages[listening] == (
        f"voxserve listening on {live.url} (metrics on {live.metrics_url}/metrics)"
    )
    assert messages[wyoming] == (
        f"Wyoming (Home Assistant) listening on tcp://127.0.0.1:{live.wyoming_port}"
    )
    assert sum(m.startswith("Started server process") for m in messages) == 1
    assert not any("Uvicorn running" in m for m in messages)
    assert "cache memory" in messages[ready]


@pytest.mark.inprocess
@pytest.mark.parametrize("taken", ["port", "metrics_port"])
def test_a_port_in_use_stops_start_up_before_anything_loads(taken: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        ports = {"port": 0, "metrics_port": 0, taken: holder.getsockname()[1]}
        with pytest.raises(ConfigError) as info:
            serve(Settings(host="127.0.0.1", **ports))
    variable = "VOXSERVE_PORT" if taken == "port" else "VOXSERVE_METRICS_PORT"
    assert info.value.param == variable
    assert f"127.0.0.1:{ports[taken]}" in info.value.message
    assert "in use" in info.value.message
    assert variable in info.value.message


@pytest.mark.inprocess
@pytest.mark.parametrize(
    ("host", "expected"), [("127.0.0.1", "http://127.0.0.1:{}"), ("::1", "http://[::1]:{}")]
)
def test_url_names_the_port_actually_bound(host: str, expected: str) -> None:
    try:
        sock = bind(host, 0, "VOXSERVE_PORT", "--port")
    except ConfigError:
        pytest.skip(f"no {host} on this machine")
    with sock:
        assert url(sock) == expected.format(sock.getsockname()[1])


@pytest.mark.inprocess
def test_quiet_thread_drops_that_threads_info_lines_only() -> None:
    quiet = QuietThread("metrics")
    records = [
        logging.makeLogRecord({"levelno": level, "threadName": thread})
        for thread, level in [
            ("metrics", logging.INFO),
            ("metrics", logging.WARNING),
            ("MainThread", logging.INFO),
        ]
    ]
    assert [quiet.filter(r) for r in records] == [False, True, True]


# -- the client address behind a proxy -------------------------------------------------------


def rate_limited_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """One request per address, then 429 for 100 s; no API keys (so clients are addresses)."""
    return {
        "VOXSERVE_ESPEAK": "false",
        "VOXSERVE_RATE_LIMIT": "0.01",
        "VOXSERVE_RATE_BURST": "1",
        "VOXSERVE_API_KEY_FILE": str(tmp_path / "absent"),
        **extra,
    }


def speak_as(live: LiveServer, forwarded_for: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    body = {"input": "Hi.", "response_format": "wav", "stream": False}
    return httpx.post(live.url + SPEECH, json=body, headers=headers, timeout=60).status_code


def test_by_default_x_forwarded_for_does_not_choose_the_rate_limit_bucket(
    tmp_path: Path,
) -> None:
    """uvicorn alone would trust the header from 127.0.0.1: every request a fresh bucket."""
    with LiveServer(rate_limited_env(tmp_path)) as live:
        assert speak_as(live, "1.2.3.4") == 200  # spends 127.0.0.1's one token
        assert speak_as(live, "5.6.7.8") == 429
        assert speak_as(live, None) == 429


def test_a_trusted_proxy_names_the_client_the_rate_limit_sees(tmp_path: Path) -> None:
    with LiveServer(rate_limited_env(tmp_path, VOXSERVE_TRUSTED_PROXIES="127.0.0.1")) as live:
        assert speak_as(live, "1.2.3.4") == 200
        assert speak_as(live, "1.2.3.4") == 429  # the limit holds for that client
        assert speak_as(live, "5.6.7.8") == 200  # another client: its own bucket
        assert speak_as(live, None) == 200  # the proxy itself, 127.0.0.1


# -- serverless: $PORT, a cold start, SIGTERM ----------------------------------------------

#: Seconds a serverless platform waits after SIGTERM before SIGKILL (Cloud Run: 10).
PLATFORM_GRACE = 10


def test_serve_listens_on_port_and_stops_within_the_grace_period_while_loading(
    tmp_path: Path,
) -> None:
    """The serverless convention: no VOXSERVE_PORT, the platform's $PORT. The first request
    is answered while the lanes and speech recognition still load in the background, and
    SIGTERM then (still loading, or not) ends the process cleanly within the grace period.
    The optimized model saved by this start is what the next one reuses."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSERVE_")}
    env.update(
        PORT=str(port),
        VOXSERVE_HOST="127.0.0.1",
        VOXSERVE_METRICS_PORT="0",
        VOXSERVE_WYOMING="false",
        VOXSERVE_ESPEAK="false",
        VOXSERVE_LOG_FORMAT="json",
        VOXSERVE_MODEL_CACHE_DIR=str(tmp_path / "models"),
    )
    log = tmp_path / "serve.log"
    for start in ("first", "next"):
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "voxserve", "serve"], env=env, stdout=out, stderr=out
            )
        try:
            body = {"input": "Hello there.", "response_format": "wav", "stream": True}
            answer = first_answer(f"http://127.0.0.1:{port}", body, process, deadline=120)
            assert answer.status_code == 200, log.read_text()
            assert answer.content[:4] == b"RIFF"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=PLATFORM_GRACE) in CLEAN_EXIT
        finally:
            terminate(process, grace=1)
        text = log.read_text()
        reused = "reusing the optimized model saved in" in text
        assert reused == (start == "next"), text


def first_answer(
    url: str, body: dict[str, object], process: subprocess.Popen[bytes], *, deadline: float
) -> httpx.Response:
    """The answer to ``body``, sent as soon as the port accepts connections (as a
    platform holds the request that woke the replica until then)."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        assert process.poll() is None, f"voxserve exited with {process.returncode}"
        try:
            return httpx.post(url + SPEECH, json=body, timeout=60)
        except httpx.ConnectError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listened on {url} within {deadline}s")
