"""A real voxserve server in a subprocess, for tests that go over real HTTP.

``LiveServer(env={...})`` runs ``python -m voxserve serve`` on free 127.0.0.1 ports,
waits for ``/readyz`` and stops it (SIGTERM, then SIGKILL) on exit. Its log is kept for
assertions and shown when start-up fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx


def terminate(process: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM, then SIGKILL if ``process`` is still running after ``grace`` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``with LiveServer() as server: httpx.get(server.url + "/healthz")``."""

    def __init__(self, env: dict[str, str] | None = None, *, startup_timeout: float = 60) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}"
        self._env = env or {}
        self._timeout = startup_timeout
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in __exit__
            prefix="voxserve-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def __enter__(self) -> LiveServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSERVE_")}
        env.update(
            VOXSERVE_HOST="127.0.0.1",
            VOXSERVE_PORT=str(self.port),
            VOXSERVE_METRICS_PORT=str(self.metrics_port),
            VOXSERVE_LOG_LEVEL="INFO",
        )
        env.update(self._env)
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
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"voxserve was not ready after {self._timeout}s:\n{self.log}")

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
