"""Start-up order (server/app.py): ready before what the first request does not need, which
then loads in the background; requests meanwhile are answered. Fake engine and recognizer,
the real HTTP server (a cold start with the real model: test_server_run.py)."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile
import uvicorn

from fake_server import fake_settings, fake_synthesizer, wait_until
from fakes import FakeEngine, FakeRecognizer
from voxserve.asr import AsrConfig, AsrModel, Transcriber
from voxserve.asr.whisper import Recognizer
from voxserve.server.app import create_app, quiet_moment
from voxserve.server.protocol import UVICORN_OPTIONS
from voxserve.settings import platform_port

pytestmark = pytest.mark.inprocess


class SlowLoading:
    """A recognizer loader that holds until ``release`` is set."""

    def __init__(self, recognizer: FakeRecognizer) -> None:
        self.recognizer = recognizer
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, model: AsrModel) -> Recognizer:
        self.started.set()
        self.release.wait(timeout=30)
        return self.recognizer


@pytest.fixture
def slow() -> SlowLoading:
    return SlowLoading(FakeRecognizer())


@pytest.fixture
def url(slow: SlowLoading) -> Iterator[str]:
    settings = fake_settings()
    synth = fake_synthesizer(FakeEngine(), settings)
    model = slow.recognizer.model
    transcriber = Transcriber(
        {model.id: model}, synth.lanes, config=AsrConfig(), loader=slow
    )  # fmt: skip
    app = create_app(settings, synthesizer=synth, transcriber=transcriber)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, **UVICORN_OPTIONS))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10, what="the server to start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        slow.release.set()
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def wav(seconds: float, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, np.full(int(seconds * rate), 0.1, np.float32), rate, format="WAV")
    return out.getvalue()


def test_ready_while_speech_recognition_loads_and_both_kinds_of_request_are_answered(
    url: str, slow: SlowLoading
) -> None:
    assert httpx.get(url + "/readyz").status_code == 200
    assert slow.started.wait(timeout=10)  # loading in the background, still held
    speech = httpx.post(url + "/v1/audio/speech", json={"input": "Hi.", "response_format": "wav"})
    assert speech.status_code == 200
    assert speech.content[:4] == b"RIFF"

    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(
            httpx.post,
            url + "/v1/audio/transcriptions",
            data={"model": "whisper-1"},
            files={"file": ("a.wav", wav(1.0), "audio/wav")},
            timeout=30,
        )
        assert not upload.done()  # it waits for the model
        slow.release.set()
        answer = upload.result(timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == "window 0"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"PORT": "8080"}, 8080),
        ({"PORT": " 8080 "}, 8080),
        ({"PORT": "8080", "VOXSERVE_PORT": "5002"}, None),  # VOXSERVE_PORT is read by Settings
        ({"PORT": "8080", "voxserve_port": "5002"}, None),  # as case-insensitively as there
    ],
)
def test_platform_port_is_port_unless_voxserve_port_is_set(
    environ: dict[str, str], expected: int | None
) -> None:
    assert platform_port(environ) == expected


@pytest.mark.parametrize("value", ["http", "-1", "70000", ""])
def test_a_bad_platform_port_is_named(value: str) -> None:
    from voxserve.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        platform_port({"PORT": value})
    assert info.value.param == "PORT"
    assert "0 to 65535" in info.value.message


class FakeClock:
    """A clock that only the fake sleep moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_background_loading_waits_for_a_quiet_moment_after_the_first_request() -> None:
    """The request that woke a replica goes before the background loading: it waits for
    QUIET seconds without admitted work, counted from the last work seen."""
    clock = FakeClock()
    busy_until = 1.0  # a request admitted at readiness, done after 1 s

    def work() -> float:
        return 2.0 if clock.now < busy_until else 0.0

    quiet = asyncio.run(
        quiet_moment(work, quiet=0.5, limit=10, poll=0.05, clock=clock, sleep=clock.sleep)
    )
    assert quiet is True
    # Work is seen at most one poll (0.05 s) before it ends.
    assert busy_until - 0.05 + 0.5 <= clock.now < busy_until + 0.5 + 0.05


def test_background_loading_starts_after_the_limit_under_steady_load() -> None:
    clock = FakeClock()
    quiet = asyncio.run(
        quiet_moment(lambda: 1.0, quiet=0.5, limit=3, poll=0.05, clock=clock, sleep=clock.sleep)
    )
    assert quiet is False
    assert 3 <= clock.now < 3.1
