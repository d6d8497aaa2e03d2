"""A real ``redis-server`` in a subprocess, for tests that need a Redis they can hurt.

``RedisServer()`` starts Debian's redis-server (``apt-get install -y redis-server``) on a
free 127.0.0.1 port with no persistence, waits until it answers PING, and stops it by PID
on exit. Tests break it on purpose: :meth:`~RedisServer.kill` (SIGKILL, the port then
refuses connections), :meth:`~RedisServer.pause` / :meth:`~RedisServer.resume`
(SIGSTOP / SIGCONT: connections are accepted by the kernel but never answered, so clients
time out), and :meth:`~RedisServer.restart` (a fresh, empty server on the same port).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from live import PortTaken, free_port, on_a_free_port, port_taken, terminate

REDIS_SERVER = "/usr/bin/redis-server"


def redis_server_binary() -> str:
    """The redis-server executable; a clear error (never a skip) when it is missing."""
    found = shutil.which("redis-server") or (REDIS_SERVER if Path(REDIS_SERVER).exists() else None)
    if found is None:
        raise RuntimeError(
            "redis-server is not installed; the cache tests need it: "
            "apt-get install -y redis-server"
        )
    return found


class RedisServer:
    """``with RedisServer() as r: Redis.from_url(r.url).ping()``."""

    def __init__(self, *, password: str | None = None, startup_timeout: float = 10) -> None:
        self.port = free_port()
        self.password = password
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._timeout = startup_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="voxserve-redis-")
        self._log = Path(self._dir.name) / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def log(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def client(self, *, password: str | None = None) -> redis.Redis:
        """A plain synchronous client, authenticated with the server's password."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=password if password is not None else self.password,
            socket_timeout=5,
        )

    def start(self) -> RedisServer:
        """Start the server (on the same port as before, after a kill or stop)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"redis-server already running on port {self.port}")
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", self._dir.name,
        ]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password]
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.paused = False
        deadline = time.monotonic() + self._timeout
        # Short time-outs: what answers on the port may not be this server (PortTaken).
        probe = redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=0.5,
            socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
        with probe:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    kind = PortTaken if port_taken(self.log) else RuntimeError
                    raise kind(f"redis-server exited with {self.process.returncode}:\n{self.log}")
                try:
                    if probe.ping():
                        return self
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server was not ready after {self._timeout}s:\n{self.log}")

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 5 s) by PID; a paused server is resumed first."""
        if self.process is None or self.process.poll() is not None:
            return
        if self.paused:
            self.resume()
        terminate(self.process, grace=5)

    def kill(self) -> None:
        """SIGKILL by PID: the crash of a Redis host, without any goodbye to clients."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the server keeps its port but answers nothing, so clients time out."""
        assert self.process is not None
        assert self.process.poll() is None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.process is not None
        assert self.process.poll() is None
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self) -> RedisServer:
        """Kill whatever runs and start an empty server on the same port."""
        self.kill()
        return self.start()

    def __enter__(self) -> RedisServer:
        return on_a_free_port(self.start, self._move)

    def _move(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._dir.cleanup()
