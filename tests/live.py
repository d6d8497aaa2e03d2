"""A real voxserve server in a subprocess, for tests that go over real HTTP.

``LiveServer(env={...})`` runs ``python -m voxserve serve`` on 127.0.0.1 with ports the
server itself picks (0: no race with another process between choosing a free port and
binding it), reads them from its "listening" line, waits for ``/readyz`` and stops it
(SIGTERM, then SIGKILL) on exit. Its log is kept for assertions and shown when start-up
fails.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families


def terminate(process: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM, then SIGKILL if ``process`` is still running after ``grace`` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


#: The server's line once it accepts connections: its API and metrics addresses.
_LISTENING = re.compile(
    r"voxserve listening on (http://[\w.:\[\]]+) \(metrics on (http://[\w.:\[\]]+)/metrics\)"
)


#: The log lines of server.app.after_ready, done or failed.
_LOADED = re.compile(r"background loading done|loading in the background failed")

#: The Wyoming listener's line, when it is on (VOXSERVE_WYOMING).
_WYOMING = re.compile(r"Wyoming \(Home Assistant\) listening on tcp://[\d.]+:(\d+)")


def free_port() -> int:
    """A port free now. Another process may bind it before the caller's server does (two
    pytest workers start servers at once): servers started on it raise :class:`PortTaken`
    and go again on another (:data:`PORT_TRIES`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


T = TypeVar("T")

#: Ports tried by a test server whose port was taken between free_port() and its bind.
PORT_TRIES = 5


class PortTaken(RuntimeError):
    """The server could not bind the port free_port() chose: something took it meanwhile."""


def port_taken(log: str) -> bool:
    """Whether a server's log says its listening port was in use."""
    return "Address already in use" in log


def on_a_free_port(start: Callable[[], T], move: Callable[[int], None]) -> T:
    """``start()`` a server, and while it raises :class:`PortTaken`, ``move`` it to another
    port from free_port() and start it again (:data:`PORT_TRIES` in all)."""
    for _ in range(PORT_TRIES - 1):
        try:
            return start()
        except PortTaken:
            move(free_port())
    return start()


class LiveServer:
    """``with LiveServer() as server: httpx.get(server.url + "/healthz")``."""

    def __init__(self, env: dict[str, str] | None = None, *, startup_timeout: float = 60) -> None:
        # Known once the server says where it listens (__enter__).
        self.port = 0
        self.metrics_port = 0
        self.url = ""
        self.metrics_url = ""
        self.wyoming_port = 0
        """The Wyoming listener's port (0 when VOXSERVE_WYOMING=false)."""
        self._env = env or {}
        self._timeout = startup_timeout
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in __exit__
            prefix="voxserve-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def wait_loaded(self, limit: float = 90) -> None:
        """Wait until the server has done what it loads after readiness (server.app
        ``after_ready``: it warms the lanes with a sentence, which the metrics count):
        the log says so at INFO. Quieter logs say nothing, and this returns at once."""
        if self._env.get("VOXSERVE_LOG_LEVEL", "INFO").upper() not in ("DEBUG", "INFO"):
            return
        deadline = time.monotonic() + limit
        while _LOADED.search(self.log) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no background loading after {limit}s:\n{self.log}")
            time.sleep(0.05)

    def __enter__(self) -> LiveServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSERVE_")}
        env.update(
            VOXSERVE_HOST="127.0.0.1",
            VOXSERVE_PORT="0",
            VOXSERVE_METRICS_PORT="0",
            VOXSERVE_WYOMING_PORT="0",  # never Home Assistant's 10200, which may be taken
            VOXSERVE_LOG_LEVEL="INFO",
        )
        env.update(self._env)
        if env["VOXSERVE_LOG_LEVEL"].upper() not in ("DEBUG", "INFO"):
            # Quieter than INFO, the server never says where it listens: choose the ports
            # here (with the small race that port 0 avoids) and know them at once.
            for name in ("VOXSERVE_PORT", "VOXSERVE_METRICS_PORT", "VOXSERVE_WYOMING_PORT"):
                if env[name] == "0":
                    env[name] = str(free_port())
            self._take_ports(env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voxserve", "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"voxserve exited with {self.process.returncode}:\n{self.log}")
            if not self.url and not self._read_ports():
                time.sleep(0.05)
                continue
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"voxserve was not ready after {self._timeout}s:\n{self.log}")

    def _take_ports(self, env: dict[str, str]) -> None:
        self.port = int(env["VOXSERVE_PORT"])
        self.metrics_port = int(env["VOXSERVE_METRICS_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}"
        if env.get("VOXSERVE_WYOMING", "true").lower() not in ("false", "0", "no", "off"):
            self.wyoming_port = int(env["VOXSERVE_WYOMING_PORT"])

    def _read_ports(self) -> bool:
        """Take the ports from the server's "listening" line, once it is in the log."""
        match = _LISTENING.search(self.log)
        if match is None:
            return False
        self.url, self.metrics_url = match.group(1), match.group(2)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.metrics_port = int(self.metrics_url.rsplit(":", 1)[1])
        wyoming = _WYOMING.search(self.log)
        self.wyoming_port = int(wyoming.group(1)) if wyoming else 0
        return True

    def stop(self) -> int | None:
        """SIGTERM (graceful drain), SIGKILL after 15 s; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        return terminate(self.process, grace=15)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


def read_metrics(server: LiveServer) -> dict[str, float]:
    """The server's samples, keyed ``name`` or ``name{label="value",...}`` (labels sorted)."""
    text = httpx.get(server.metrics_url + "/metrics", timeout=30).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def wait_until_idle(
    server: LiveServer, voice: str, *, interval: float = 0.5, limit: float = 90
) -> dict[str, float]:
    """Poll the metrics until the server burns < 10 % of a core and ``voice`` queues
    nothing; the metrics then.

    An inference keeps onnxruntime's threads busy (over one core here), so a quiet
    half-second with an empty queue means no synthesis is running or waiting.
    """
    queue_depth = f'voxserve_queue_depth{{voice="{voice}"}}'
    deadline = time.monotonic() + limit
    server.wait_loaded(limit)
    before = read_metrics(server)
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = read_metrics(server)
        busy = now["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]
        if busy < 0.1 * interval and now.get(queue_depth, 0.0) == 0:
            return now
        before = now
    raise AssertionError(f"the server was still busy after {limit}s")
