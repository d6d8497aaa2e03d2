"""Scenario plumbing: the context, checks and results, the server under test, samplers.

A scenario is ``async def run(ctx: Context) -> Result``. It starts servers with
:func:`serve` (tests/live.py's ``LiveServer`` through benchmarks/common.py, killed on
exit so that no load outlives it), records figures in ``result.figures`` and turns each
target into a :class:`Check`; the result passes when every check passes.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from reliability.traffic import References

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "reliability" / "results"
BENCHMARKS = ROOT / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from common import (  # type: ignore[import-not-found]  # noqa: E402
    BENCH_ENV,
    import_live_server,
    machine_info,
    percentile,
)
from texts import LONG_ARTICLE, PARAGRAPHS, SHORT  # type: ignore[import-not-found]  # noqa: E402

#: Every server the suite starts: CPU, the Piper voice only, no cache unless a scenario
#: asks for one, quiet logs (a log line per request costs CPU under load), no API keys
#: and no rate limit whatever the host has.
BASE_ENV: dict[str, str] = BENCH_ENV | {
    "VOXSERVE_API_KEYS": "",
    "VOXSERVE_API_KEY_FILE": "/nonexistent/voxserve-reliability-keys",
    "VOXSERVE_RATE_LIMIT": "0",
}

#: A scenario that runs past this is stopped and fails (each is designed for ≤ 90 s).
SCENARIO_LIMIT_S = 150.0

__all__ = [
    "BASE_ENV",
    "LONG_ARTICLE",
    "PARAGRAPHS",
    "RESULTS",
    "ROOT",
    "SCENARIO_LIMIT_S",
    "SHORT",
    "Check",
    "Context",
    "Result",
    "Sampler",
    "Server",
    "commit",
    "cpu_idle",
    "machine_info",
    "pcts",
    "redis_server_class",
    "serve",
    "wait_until",
]


@dataclass
class Context:
    """What every scenario gets from the command line."""

    quick: bool
    """Short smoke sizes (few clients, seconds of load) instead of the full run."""
    out: Path
    """Directory of the JSON results."""
    server_env: dict[str, str] = field(default_factory=dict)
    """Extra VOXSERVE_* settings for every server (``--server-env``)."""
    references: References = field(default_factory=References)
    """The reference bodies, made once per run and shared by its scenarios."""

    def env(self, **scenario: str) -> dict[str, str]:
        """The server environment: the base, then ``--server-env``, then the scenario's."""
        return BASE_ENV | self.server_env | scenario


@dataclass(frozen=True)
class Check:
    """One target of a scenario and whether it was met."""

    name: str
    """Short identifier, e.g. ``admitted_p95_s``."""
    passed: bool
    """Whether the target was met."""
    value: Any
    """What was measured (None when it could not be)."""
    target: str
    """The target in words, e.g. ``<= 20 s``."""
    detail: str = ""
    """Why it failed, or what the value means."""


class Result:
    """Figures and checks of one scenario run; ``document()`` is its JSON."""

    def __init__(self, name: str, ctx: Context) -> None:
        self.name = name
        self.quick = ctx.quick
        self.config: dict[str, Any] = {}
        self.figures: dict[str, Any] = {}
        self.checks: list[Check] = []
        self.notes: list[str] = []
        self.error: str | None = None
        self._started = time.monotonic()
        self.wall_s = 0.0

    def check(self, name: str, passed: bool, value: Any, target: str, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(passed), value, target, detail[:600]))
        return passed

    def at_most(
        self, name: str, value: float | None, limit: float, unit: str = "s", detail: str = ""
    ) -> bool:
        """A check that ``value`` was measured and is at most ``limit``."""
        ok = value is not None and not math.isnan(value) and value <= limit
        digits = 1 if unit == "MB" else 3
        shown = None if value is None or math.isnan(value) else round(value, digits)
        if not detail and value is None:
            detail = "not measured (timed out or no samples)"
        return self.check(name, ok, shown, f"<= {limit:g} {unit}".rstrip(), detail)

    def none_of(self, name: str, problems: dict[str, Any], what: str) -> bool:
        """A check that ``problems`` (kind -> count or samples) is empty."""
        count = sum(v if isinstance(v, int) else len(v) for v in problems.values())
        detail = "; ".join(f"{k}: {v}" for k, v in problems.items())[:600]
        return self.check(name, count == 0, count, f"0 {what}", detail)

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.passed for c in self.checks)

    def finish(self) -> Result:
        self.wall_s = round(time.monotonic() - self._started, 2)
        return self

    def document(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "quick": self.quick,
            "passed": self.passed,
            "wall_s": self.wall_s,
            "failed_checks": [c.name for c in self.checks if not c.passed],
            "error": self.error,
            "checks": [asdict(c) for c in self.checks],
            "figures": self.figures,
            "config": self.config,
            "notes": self.notes,
        }


def commit() -> str:
    """The checked-out commit of the server under test, ``+dirty`` if src/ has changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def pcts(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """n, p50, p95, p99 and max of ``values`` (seconds), rounded; only n when empty."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
    }


class Server:
    """A running voxserve: URLs, process (psutil), Prometheus metrics, log."""

    def __init__(self, live: Any, env: dict[str, str]) -> None:
        self.live = live
        self.env = env
        self.url: str = live.url
        self.metrics_url: str = live.metrics_url
        self.pid: int = live.process.pid
        self.process = psutil.Process(self.pid)

    def rss(self) -> int:
        """Resident memory in bytes (0 once the process is gone)."""
        try:
            return int(self.process.memory_info().rss)
        except psutil.Error:
            return 0

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` with these labels on the metrics port."""
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(self.metrics_url + "/metrics")).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    async def in_flight(self) -> float:
        """The server's gauge of requests being served (src/voxserve/metrics.py)."""
        return await self.metric("voxserve_requests_in_flight")

    def log_tail(self, lines: int = 15) -> list[str]:
        """The last lines of the server's log (for a result that failed)."""
        return [line[:300] for line in self.live.log.splitlines()[-lines:]]


def redis_server_class() -> Any:
    """tests/redis_server.py's RedisServer: a real redis-server on a free port."""
    import_live_server()  # puts tests/ on sys.path
    from redis_server import RedisServer  # type: ignore[import-not-found]

    return RedisServer


@asynccontextmanager
async def serve(env: dict[str, str], *, startup_timeout: float = 90) -> AsyncIterator[Server]:
    """Start ``python -m voxserve serve`` with ``env``; SIGKILL it on exit.

    Killed rather than drained: a scenario has measured what it wanted by then, and a
    drain could wait 30 s for work its clients abandoned.
    """
    live = import_live_server()(env=env, startup_timeout=startup_timeout)
    start = asyncio.ensure_future(asyncio.to_thread(live.__enter__))
    try:
        await asyncio.shield(start)
        yield Server(live, env)
    finally:
        if not start.done():  # cancelled while starting: let the start finish, then kill
            await asyncio.wait([start])
        if live.process is not None and live.process.poll() is None:
            live.process.kill()
            await asyncio.to_thread(live.process.wait)
        await asyncio.to_thread(live.__exit__, None, None, None)


class Sampler:
    """Calls ``probe()`` every ``every`` seconds in a task; keeps the (time, value) pairs."""

    def __init__(self, probe: Callable[[], float], every: float) -> None:
        self.probe = probe
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            self.samples.append((time.monotonic(), self.probe()))
            await asyncio.sleep(self.every)

    async def __aenter__(self) -> Sampler:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.samples.append((time.monotonic(), self.probe()))

    @property
    def peak(self) -> float:
        return max((v for _, v in self.samples), default=math.nan)


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, since: float, timeout: float, every: float = 0.1
) -> float | None:
    """Seconds from ``since`` (monotonic) until ``predicate()`` is true; None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return max(0.0, time.monotonic() - since)
        await asyncio.sleep(every)
    return None


async def cpu_idle(
    process: psutil.Process, *, since: float, timeout: float, threshold: float, window: float = 0.5
) -> float | None:
    """Seconds from ``since`` to the start of the first ``window`` in which ``process``
    used less than ``threshold`` percent of one core; None if none came before ``timeout``."""
    deadline = time.monotonic() + timeout
    process.cpu_percent(None)
    while time.monotonic() < deadline:
        opened = time.monotonic()
        await asyncio.sleep(window)
        try:
            busy = process.cpu_percent(None)
        except psutil.Error:
            return max(0.0, opened - since)
        if busy < threshold:
            return max(0.0, opened - since)
    return None
