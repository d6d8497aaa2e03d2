"""Graceful shutdown of the real server process (server/run.py)."""

from __future__ import annotations

import signal
import time

import httpx

from live import LiveServer

#: uvicorn re-raises the signal it handled once shutdown is complete, so outside a
#: container (where PID 1 ignores it) a graceful stop ends "killed by SIGTERM".
CLEAN_EXIT = (0, -signal.SIGTERM)


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
