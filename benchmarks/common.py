"""Helpers shared by the benchmark scripts: timing, percentiles, interleaving, output.

Every script writes one JSON document (see README.md for the schema)::

    {"benchmark": ..., "quick": ..., "machine": {...}, "config": {...},
     "results": {...}, "targets": {...}}
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TESTS = HERE.parent / "tests"

T = TypeVar("T")


def cores() -> int:
    """CPU cores this process may run on (what voxserve gives onnxruntime by default)."""
    from voxserve.cpus import usable_cores

    return usable_cores()


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or the platform's guess elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge whether two result files are comparable."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": cores(),
        "cpu_model": cpu_model(),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "numpy": _version("numpy"),
        "voxserve": _version("voxserve"),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, like numpy's default."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def summary(values: Sequence[float], *, digits: int = 6) -> dict[str, Any]:
    """n, min, p10, median, p90, max of ``values`` (seconds or ratios), rounded."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": round(min(values), digits),
        "p10": round(percentile(values, 10), digits),
        "median": round(median(values), digits),
        "p90": round(percentile(values, 90), digits),
        "max": round(max(values), digits),
    }


def timed(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    """Seconds ``fn(*args)`` took on the wall clock, and what it returned."""
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


#: Pause before each timed inference: onnxruntime's worker threads spin for a while
#: after a run, and one side's spinning threads must not slow the other side down.
SETTLE_S = 0.02


def settle() -> None:
    time.sleep(SETTLE_S)


class Budget:
    """A bound on a measuring loop: at most ``rounds`` rounds and ``seconds`` of wall time.

    At least ``min_rounds`` run even past the time, so every result has some samples.
    """

    def __init__(self, rounds: int, seconds: float, *, min_rounds: int = 1) -> None:
        self.rounds = rounds
        self.seconds = seconds
        self.min_rounds = min(min_rounds, rounds)
        self.done = 0
        self._start = time.monotonic()
        self.cut_short = False

    def __iter__(self) -> Iterator[int]:
        while self.done < self.rounds:
            over = time.monotonic() - self._start > self.seconds
            if over and self.done >= self.min_rounds:
                self.cut_short = True
                return
            yield self.done
            self.done += 1

    def report(self) -> dict[str, Any]:
        return {
            "rounds": self.done,
            "rounds_asked": self.rounds,
            "time_limit_s": self.seconds,
            "cut_short_by_time": self.cut_short,
        }


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (< 30 s)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the JSON (default benchmarks/results/<name>.json; "
        "<name>.quick.json with --quick, so a smoke run never overwrites real results)",
    )
    return parser.parse_args()


def write_result(
    name: str,
    *,
    quick: bool,
    config: dict[str, Any],
    results: dict[str, Any],
    targets: dict[str, Any],
    out: Path | None = None,
) -> Path:
    """Write the result document and return its path."""
    path = out or RESULTS / (f"{name}.quick.json" if quick else f"{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "quick": quick,
        "machine": machine_info(),
        "config": config,
        "results": results,
        "targets": targets,
    }
    path.write_text(portable(json.dumps(document, indent=2, sort_keys=False)) + "\n")
    return path


def portable(text: str) -> str:
    """``text`` without this machine's paths: the checkout becomes relative, the virtualenv
    ``<venv>``, so a committed result names no machine."""
    text = text.replace(str(sys.prefix), "<venv>")
    return text.replace(str(HERE.parent) + "/", "")


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A plain aligned table on stdout (benchmarks are command-line tools)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def verdict(value: float, limit: float) -> str:
    """'ok' when ``value`` is within ``limit``, else 'OVER'."""
    return "ok" if value <= limit else "OVER"


def import_live_server() -> Any:
    """tests/live.py's LiveServer: the same launcher the real-HTTP tests use."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from live import LiveServer  # type: ignore[import-not-found]

    return LiveServer


#: Environment for benchmark servers and in-process synthesizers: no cache (it would
#: answer repeats without synthesizing), CPU, only the Piper voice.
BENCH_ENV = {
    "VOXSERVE_CACHE": "off",
    "VOXSERVE_DEVICE": "cpu",
    "VOXSERVE_ESPEAK": "false",
    "VOXSERVE_LOG_LEVEL": "WARNING",
    # Wyoming stays on (as served) but never on Home Assistant's 10200, which may be taken.
    "VOXSERVE_WYOMING_PORT": "0",
}


def bench_settings() -> Any:
    """Settings matching BENCH_ENV, for an in-process Synthesizer."""
    from voxserve import Settings

    return Settings.load(cache="off", device="cpu", espeak=False)
