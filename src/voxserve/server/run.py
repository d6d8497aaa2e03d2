"""Running the service: the API listener, the metrics listener, graceful drain."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from voxserve.errors import ConfigError
from voxserve.server.app import create_app
from voxserve.server.ops import MetricsApp
from voxserve.server.protocol import UVICORN_OPTIONS
from voxserve.server.ssml_routes import reload_lexicon_on_hangup
from voxserve.settings import Settings

log = logging.getLogger(__name__)

#: Seconds in-flight requests get to finish after SIGTERM.
DRAIN_SECONDS = 30
#: The thread that runs the metrics listener.
METRICS_THREAD = "metrics"


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, turn readiness to 503 first, then let uvicorn drain. On SIGHUP,
    read the lexicon again (docs/lexicon.md).

    uvicorn stops accepting connections as soon as it handles the signal, so with
    ``drain_delay`` > 0 it is told only that many seconds later: meanwhile ``/readyz``
    answers 503 and load balancers take the replica out while it still serves. A second
    signal skips the wait. ``listening`` is logged once connections are accepted.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        app: FastAPI,
        *,
        drain_delay: float = 0,
        listening: str | None = None,
    ) -> None:
        super().__init__(config)
        self._app = app
        self._drain_delay = drain_delay
        self._listening = listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            reload_lexicon_on_hangup(self._app.state.synthesizer)
        if self.started and self._listening:
            log.info("%s", self._listening)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not self._app.state.draining
        self._app.state.draining = True
        if first and self._drain_delay > 0:
            log.info(
                "%s: draining: readiness now 503, closing the listener in %gs",
                signal.Signals(sig).name,
                self._drain_delay,
            )
            timer = threading.Timer(self._drain_delay, super().handle_exit, args=(sig, frame))
            timer.daemon = True
            timer.start()
            return
        if first:
            log.info("%s: draining (readiness now 503)", signal.Signals(sig).name)
        super().handle_exit(sig, frame)


def serve(settings: Settings, *, workers: int = 1) -> None:
    """Serve the API on ``settings.port`` and metrics on ``settings.metrics_port``.

    Both ports are bound before the voices load, so a port already in use stops start-up
    at once with a ConfigError; "listening" is logged only once the API accepts connections.
    """
    if workers > 1:
        # Several processes: uvicorn forks workers that each build the app from the
        # environment. One metrics port cannot serve them all; scale with replicas instead.
        log.warning(
            "--workers %d: the metrics and Wyoming listeners are off; prefer one process per "
            "replica",
            workers,
        )
        os.environ.update(VOXSERVE_HOST=settings.host, VOXSERVE_PORT=str(settings.port))
        uvicorn.run(
            "voxserve.server.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_config=None,
            timeout_graceful_shutdown=DRAIN_SECONDS,
            # uvicorn's default trusts X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS):
            # a local client could choose the address the rate limit sees. Only named proxies.
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies or "",
            **UVICORN_OPTIONS,
        )
        return

    with contextlib.ExitStack() as sockets:
        api_socket = sockets.enter_context(
            bind(settings.host, settings.port, "VOXSERVE_PORT", "--port")
        )
        metrics_socket = sockets.enter_context(
            bind(settings.host, settings.metrics_port, "VOXSERVE_METRICS_PORT", "--metrics-port")
        )
        wyoming_socket = None
        if settings.wyoming:
            wyoming = bind(
                settings.wyoming_host, settings.wyoming_port, "VOXSERVE_WYOMING_PORT",
                "--wyoming-port",
            )  # fmt: skip
            wyoming_socket = sockets.enter_context(wyoming)
        _serve_on(settings, api_socket, metrics_socket, wyoming_socket)


def _serve_on(
    settings: Settings,
    api_socket: socket.socket,
    metrics_socket: socket.socket,
    wyoming_socket: socket.socket | None = None,
) -> None:
    app = create_app(settings, wyoming=wyoming_socket)
    metrics = uvicorn.Server(
        uvicorn.Config(
            MetricsApp(app.state.metrics.registry),
            lifespan="off",
            log_config=None,
            access_log=False,
        )
    )
    # Off the main thread, uvicorn installs no signal handlers: the API server owns them.
    metrics_thread = threading.Thread(
        target=metrics.run, kwargs={"sockets": [metrics_socket]}, name=METRICS_THREAD, daemon=True
    )
    api = DrainingServer(
        uvicorn.Config(
            app,
            log_config=None,
            timeout_graceful_shutdown=DRAIN_SECONDS,
            timeout_keep_alive=settings.keepalive_seconds,
            server_header=False,
            proxy_headers=bool(settings.trusted_proxies),  # see above: only named proxies
            forwarded_allow_ips=settings.trusted_proxies or "",
            **UVICORN_OPTIONS,
        ),
        app,
        drain_delay=settings.drain_delay_seconds,
        listening=f"voxserve listening on {url(api_socket)} "
        f"(metrics on {url(metrics_socket)}/metrics)",
    )
    # The metrics listener's own start and stop lines would repeat the API's.
    quiet = QuietThread(METRICS_THREAD)
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(quiet)
    metrics_thread.start()
    try:
        api.run(sockets=[api_socket])
    finally:
        metrics.should_exit = True
        metrics_thread.join(timeout=5)
        uvicorn_log.removeFilter(quiet)


def bind(host: str, port: int, setting: str, flag: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening), or a ConfigError that says
    the port is taken and how to choose another."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        hint = (
            "another program (another voxserve?) is using it; stop it or choose another port"
            if exc.errno == errno.EADDRINUSE
            else "check the address"
        )
        raise ConfigError(
            f"Cannot listen on {host}:{port} ({reason}): {hint} with {flag} or {setting}.",
            param=setting,
        ) from None
    return sock


def url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (the real port when 0 was asked for)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class QuietThread(logging.Filter):
    """Drops the INFO lines (and below) that one thread logs; its warnings still show."""

    def __init__(self, thread_name: str) -> None:
        super().__init__()
        self.thread_name = thread_name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.threadName != self.thread_name
