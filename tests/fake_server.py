"""The real HTTP server (uvicorn, every middleware) on the fake engine, in a thread.

For what only a real connection shows (a client that hangs up, stalls its upload or stops
reading; the end of a drain) without loading a model: it starts in milliseconds.
``FakeServer(engine, settings)`` listens on a socket bound before the thread starts, so no
other process can take the port in between.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from fakes import FakeEngine, FakeRecognizer
from voxserve.asr import AsrConfig, Transcriber
from voxserve.configs import LibraryConfig, SynthesisConfig
from voxserve.engines.voices import VoiceLibrary
from voxserve.lanes import Lanes
from voxserve.server.app import create_app
from voxserve.server.protocol import UVICORN_OPTIONS
from voxserve.server.speech import SpeechResponder
from voxserve.settings import Settings
from voxserve.synthesizer import Synthesizer


def fake_settings(**overrides: Any) -> Settings:
    """Settings for a server whose only voice is the fake engine's; no cache, no keys."""
    values: dict[str, Any] = {
        "default_voice": "fake-voice",
        "espeak": False,
        "cache": "off",
        "lanes": 1,
        "api_key_file": Path("/nonexistent/voxserve-test-keys"),
    }
    return Settings(**(values | overrides))


def fake_synthesizer(engine: FakeEngine, settings: Settings) -> Synthesizer:
    config = LibraryConfig.from_settings(settings)
    library = VoiceLibrary([engine.voice], config, loaders={"fake": lambda _: engine})
    return Synthesizer(library, SynthesisConfig.from_settings(settings))


def fake_transcriber(recognizer: FakeRecognizer, lanes: Lanes, settings: Settings) -> Transcriber:
    """The transcription service on ``recognizer`` alone."""
    config = AsrConfig(max_seconds=settings.asr_max_seconds, vad=settings.asr_vad)
    return Transcriber(
        {recognizer.model.id: recognizer.model}, lanes, config=config, loader=lambda _: recognizer
    )


class FakeServer:
    """``with FakeServer(engine, settings) as server: httpx.post(server.url + ...)``."""

    def __init__(
        self,
        engine: FakeEngine,
        settings: Settings,
        *,
        graceful_shutdown: float = 5,
        recognizer: FakeRecognizer | None = None,
        wyoming: bool = False,
    ) -> None:
        """``recognizer``: serve speech to text on it (off without one). ``wyoming``: serve
        the Wyoming protocol too, on ``wyoming_port``."""
        self.engine = engine
        self.registry = CollectorRegistry()
        synth = fake_synthesizer(engine, settings)
        self.transcriber = None
        if recognizer is not None:
            self.transcriber = fake_transcriber(recognizer, synth.lanes, settings)
        self._wyoming: socket.socket | None = None
        self.wyoming_port = 0
        if wyoming:
            self._wyoming = socket.socket()
            self._wyoming.bind(("127.0.0.1", 0))
            self.wyoming_port = self._wyoming.getsockname()[1]
        self.app: FastAPI = create_app(
            settings, synthesizer=synth, transcriber=self.transcriber, registry=self.registry,
            wyoming=self._wyoming,
        )  # fmt: skip
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            self.app,
            log_config=None,
            timeout_graceful_shutdown=graceful_shutdown,
            **UVICORN_OPTIONS,  # the API's own HTTP protocol, as `voxserve serve` runs it
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def responder(self) -> SpeechResponder:
        responder: SpeechResponder = self.app.state.responder
        return responder

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def __enter__(self) -> FakeServer:
        self._thread.start()
        wait_until(lambda: self.server.started, timeout=10, what="the server to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._socket.close()
        if self._wyoming is not None:
            self._wyoming.close()


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll ``condition`` until true; returns the seconds it took, fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)
    return time.monotonic() - started
