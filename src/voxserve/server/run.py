"""Running the service: the API listener, the metrics listener, graceful drain."""

from __future__ import annotations

import logging
import os
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from voxserve.server.app import create_app
from voxserve.server.ops import MetricsApp
from voxserve.settings import Settings

log = logging.getLogger(__name__)

#: Seconds in-flight requests get to finish after SIGTERM.
DRAIN_SECONDS = 30


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, turn readiness to 503 first, then let uvicorn drain.

    uvicorn stops accepting connections as soon as it handles the signal, so with
    ``drain_delay`` > 0 it is told only that many seconds later: meanwhile ``/readyz``
    answers 503 and load balancers take the replica out while it still serves. A second
    signal skips the wait.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI, *, drain_delay: float = 0) -> None:
        super().__init__(config)
        self._app = app
        self._drain_delay = drain_delay

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not self._app.state.draining
        self._app.state.draining = True
        if first and self._drain_delay > 0:
            log.info(
                "signal %s: draining: readiness now 503, closing the listener in %gs",
                sig,
                self._drain_delay,
            )
            timer = threading.Timer(self._drain_delay, super().handle_exit, args=(sig, frame))
            timer.daemon = True
            timer.start()
            return
        if first:
            log.info("signal %s: draining (readiness now 503)", sig)
        super().handle_exit(sig, frame)


def serve(settings: Settings, *, workers: int = 1) -> None:
    """Serve the API on ``settings.port`` and metrics on ``settings.metrics_port``."""
    if workers > 1:
        # Several processes: uvicorn forks workers that each build the app from the
        # environment. One metrics port cannot serve them all; scale with replicas instead.
        log.warning(
            "--workers %d: the metrics listener is off; prefer one process per replica", workers
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
        )
        return

    app = create_app(settings)
    metrics = uvicorn.Server(
        uvicorn.Config(
            MetricsApp(app.state.metrics.registry),
            host=settings.host,
            port=settings.metrics_port,
            lifespan="off",
            log_config=None,
            access_log=False,
        )
    )
    # Off the main thread, uvicorn installs no signal handlers: the API server owns them.
    metrics_thread = threading.Thread(target=metrics.run, name="metrics", daemon=True)
    metrics_thread.start()
    log.info(
        "voxserve listening on http://%s:%d (metrics on :%d/metrics)",
        settings.host,
        settings.port,
        settings.metrics_port,
    )
    api = DrainingServer(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=DRAIN_SECONDS,
            timeout_keep_alive=settings.keepalive_seconds,
            server_header=False,
            proxy_headers=bool(settings.trusted_proxies),  # see above: only named proxies
            forwarded_allow_ips=settings.trusted_proxies or "",
        ),
        app,
        drain_delay=settings.drain_delay_seconds,
    )
    try:
        api.run()
    finally:
        metrics.should_exit = True
        metrics_thread.join(timeout=5)
