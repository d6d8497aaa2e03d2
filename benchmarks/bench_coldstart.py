"""Cold start: where the time goes from ``exec`` to the first audio byte.

Two parts, each over several fresh processes (medians: the 2-core machine is shared and
noisy, so single starts say little):

a. **Phases**, in a child process that starts the service as ``voxserve serve`` does
   (imports, settings, ``create_app``, its lifespan) with a timer around each step that
   costs: voice discovery, cutting the graph (``load_model``), onnxruntime session
   creation (graph optimization included), the saved optimized models, warm-up, the
   speech recognition model. What runs after readiness (in the background) is timed
   too, apart.
b. **Scale from zero**: ``python -m voxserve serve`` is started at the moment the first
   request is sent (the client retries its connection until the port accepts, as a
   serverless platform holds the request while the replica starts). Measured: exec to
   ``/readyz`` 200, exec to the first audio byte of a short streamed request (the first
   byte past the wav header), RSS at readiness. Each start with an empty model cache
   (``first``: a new replica whose image carries no saved models) and with the cache the
   previous start left (``reused``).

``--mode scale-from-zero`` runs b alone, as a serverless platform sees it: the saved
model already there (one start, not counted, saves it), no readiness polling beside the
request (a platform's probe would compete with it on 2 cores), ``--starts`` starts; exec to
the first audio byte, to the whole answer, and RSS then. -> results/coldstart-scale-from-zero.json.
With ``--against DIR`` the starts alternate with another source tree, for a before/after
on the same load: ``git archive REV src | tar -x -C DIR`` makes one.

Run: ``.venv/bin/python benchmarks/bench_coldstart.py [--quick] [--starts N]
[--mode all|scale-from-zero] [--against DIR] [--label L] [--out PATH]`` -> results/coldstart.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    BENCH_ENV,
    RESULTS,
    median,
    print_table,
    summary,
    write_result,
)

TEXT = "Hello, how can I help you?"
#: Beside BENCH_ENV: no Wyoming listener (its fixed port could be taken on a shared machine).
ENV = {"VOXSERVE_WYOMING": "false"}
WAV_HEADER = 44
GOAL_FIRST_AUDIO_S = 1.2


# -- a. phases, in a child process ------------------------------------------------------


def wrap(events: list[dict[str, Any]], t0: float, owner: Any, name: str, label: str) -> None:
    """Time every call of ``owner.name`` into ``events`` (offsets from ``t0``)."""
    original = getattr(owner, name, None)
    if original is None:
        return
    is_async = asyncio.iscoroutinefunction(original)

    def record(start: float) -> None:
        events.append({
            "step": label,
            "start_s": round(start - t0, 4),
            "seconds": round(time.perf_counter() - start, 4),
            "thread": threading.current_thread().name,
        })  # fmt: skip

    if is_async:

        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                record(start)

        setattr(owner, name, timed_async)
    else:

        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                record(start)

        setattr(owner, name, timed_sync)


def child(cache_dir: str) -> None:
    """Start the service in-process with timers around its steps; print JSON."""
    t0 = time.perf_counter()
    events: list[dict[str, Any]] = []
    import voxserve.server.run  # noqa: F401 - what `voxserve serve` imports

    imported = time.perf_counter() - t0

    from voxserve.asr import service
    from voxserve.engines import piper, voices

    try:
        from voxserve.engines import prepared
    except ImportError:  # before this change
        prepared = None
    from voxserve.server import app as app_module

    wrap(events, t0, voices, "discover_voices", "voice discovery")
    wrap(events, t0, piper, "load_model", "cut the graph (onnx)")  # before this change
    wrap(events, t0, prepared, "load_model", "cut the graph (onnx)")
    wrap(events, t0, prepared, "load", "find saved optimized models")
    wrap(events, t0, piper, "_session", "session creation")
    wrap(events, t0, voices, "file_digest", "model digest")
    wrap(events, t0, app_module, "warm_up", "warm-up")
    wrap(events, t0, app_module, "build_transcriber", "speech recognition: find models")
    wrap(events, t0, service.Transcriber, "load", "speech recognition: load model")
    wrap(events, t0, piper.PiperEngine, "open_lanes", "second lane's sessions")

    from voxserve.server.app import create_app
    from voxserve.settings import Settings

    settings = Settings.load(model_cache_dir=Path(cache_dir), cache="off")
    settled = time.perf_counter() - t0
    app = create_app(settings)
    built = time.perf_counter() - t0

    async def run() -> dict[str, float]:
        async with app.router.lifespan_context(app):
            ready = time.perf_counter() - t0
            background = getattr(app.state, "background", None)
            if background is not None:
                await background
            return {"ready_s": ready, "background_done_s": time.perf_counter() - t0}

    milestones = asyncio.run(run())
    print(json.dumps({
        "imports_s": imported,
        "settings_s": settled - imported,
        "create_app_s": built - settled,
        **milestones,
        "events": events,
    }))  # fmt: skip


def run_child(cache_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSERVE_")}
    env.update(BENCH_ENV, **ENV)
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(cache_dir)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def fold(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median per step (events summed per step and run, foreground and background apart)."""
    steps: dict[str, list[float]] = {}
    for run in runs:
        totals: dict[str, float] = {}
        for e in run["events"]:
            where = "foreground" if e["start_s"] < run["ready_s"] else "background"
            key = f"{e['step']} ({where})"
            totals[key] = totals.get(key, 0.0) + e["seconds"]
        for key, value in totals.items():
            steps.setdefault(key, []).append(value)
    milestones = ("imports_s", "settings_s", "create_app_s", "ready_s", "background_done_s")
    return {
        "milestones": {m: summary([r[m] for r in runs], digits=3) for m in milestones},
        "steps_median_s": {k: round(median(v), 3) for k, v in sorted(steps.items())},
    }


# -- b. scale from zero ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def first_audio(
    port: int, started: float, timeout: float, whole: dict[str, float] | None = None
) -> float:
    """Seconds from ``started`` to the first audio byte of a streamed request that is sent
    at once and retried while the port refuses connections. With ``whole``, the response
    is read to its end too and ``whole["answer_s"]`` set to when it ended."""
    body = json.dumps(
        {"input": TEXT, "response_format": "wav", "stream": True, "voice": "en_US-joe-medium"}
    ).encode()
    head = (
        f"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
        f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    while time.perf_counter() - started < timeout:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except ConnectionRefusedError:
            time.sleep(0.005)
            continue
        with sock:
            sock.sendall(head + body)
            received = b""
            while True:
                piece = sock.recv(65536)
                if not piece:
                    raise RuntimeError(f"connection closed before audio: {received[:300]!r}")
                received += piece
                header_end = received.find(b"\r\n\r\n")
                if header_end < 0:
                    continue
                if not received.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"not 200: {received[:300]!r}")
                # Chunked transfer: the payload past the wav header, framing aside.
                payload = dechunk(received[header_end + 4 :])
                if len(payload) > WAV_HEADER:
                    first = time.perf_counter() - started
                    if whole is not None:
                        while sock.recv(65536):
                            pass
                        whole["answer_s"] = time.perf_counter() - started
                    return first
    raise TimeoutError("no audio")


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        line_end = data.find(b"\r\n")
        if line_end < 0:
            break
        size = int(data[:line_end].split(b";")[0], 16)
        chunk = data[line_end + 2 : line_end + 2 + size]
        out += chunk
        if len(chunk) < size:
            break
        data = data[line_end + 4 + size :]
    return out


def one_start(cache_dir: Path, *, timeout: float = 120, probe: bool = True) -> dict[str, float]:
    """One replica started as the request is sent. ``probe``: poll /readyz beside it (for
    the time to ready and the RSS then); without, RSS is read after the answer."""
    import httpx  # before the clock starts: the client's own imports are not the server's

    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSERVE_")}
    env.update(
        BENCH_ENV,
        **ENV,
        VOXSERVE_HOST="127.0.0.1",
        VOXSERVE_PORT=str(port),
        VOXSERVE_METRICS_PORT=str(metrics_port),
        VOXSERVE_MODEL_CACHE_DIR=str(cache_dir),
    )
    result: dict[str, float] = {}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "voxserve", "serve"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip

    def poll_ready() -> None:
        while time.perf_counter() - started < timeout and process.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                if r.status_code == 200:
                    result["ready_s"] = time.perf_counter() - started
                    result["rss_at_ready_mb"] = rss_mb(process.pid)
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.005)

    poller = threading.Thread(target=poll_ready)
    if probe:
        poller.start()
    try:
        result["first_audio_s"] = first_audio(port, started, timeout, result)
        if probe:
            poller.join(timeout)
        else:
            result["ready_s"] = float("nan")
            result["rss_after_answer_mb"] = rss_mb(process.pid)
    finally:
        process.terminate()
        stopped = time.perf_counter()
        _, err = process.communicate(timeout=60)
        result["sigterm_exit_s"] = time.perf_counter() - stopped
        result["exit_code"] = process.returncode
    if "ready_s" not in result:
        raise RuntimeError(err.decode(errors="replace")[-3000:])
    return result


def scale_from_zero(args: argparse.Namespace) -> None:
    """Part b alone, with the saved model present and no readiness polling. With
    ``--against DIR`` (a source tree: DIR/src/voxserve), starts alternate between DIR and
    this checkout, in turn first, so both see the same load; paired differences too."""
    starts = 2 if args.quick else args.starts
    load_before = os.getloadavg()
    trees = {"this": None}
    if args.against is not None:
        trees = {"against": (args.against / "src").resolve(), "this": None}
    keys = ("first_audio_s", "answer_s", "rss_after_answer_mb", "sigterm_exit_s")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="voxserve-coldstart-") as tmp:

        def start(name: str) -> dict[str, float]:
            source = trees[name]
            with python_path(source):
                return one_start(Path(tmp) / name, probe=False)

        for name in trees:
            start(name)  # saves the optimized model; not counted
        for i in range(starts):
            for name in list(trees)[:: 1 if i % 2 == 0 else -1]:
                runs[name].append(start(name) | {"load_1m": os.getloadavg()[0]})
    tables = {}
    for name in trees:
        tables[name] = {k: summary([r[k] for r in runs[name]], digits=3) for k in keys}
        tables[name]["exit_codes"] = sorted({int(r["exit_code"]) for r in runs[name]})
        print_table(
            f"Scale from zero ({name}), {starts} starts, saved model present",
            ["", "median", "min", "max"],
            [(k, tables[name][k]["median"], tables[name][k]["min"], tables[name][k]["max"])
             for k in keys],
        )  # fmt: skip
    results: dict[str, Any] = {
        "label": args.label,
        # The directory's name only: a result names no machine's paths.
        "against": args.against.name if args.against else None,
        "load_average_before": [round(x, 2) for x in load_before],
        "scale_from_zero": tables["this"],
        "samples": runs["this"],
    }
    if args.against is not None:
        diffs = [
            b["first_audio_s"] - a["first_audio_s"]
            for a, b in zip(runs["against"], runs["this"], strict=True)
        ]
        results["against_tree"] = {"scale_from_zero": tables["against"], "samples": runs["against"]}
        results["first_audio_this_minus_against_s"] = summary(diffs, digits=3)
        print(f"\nfirst audio, this - against, paired: median {median(diffs):+.3f} s, "
              f"{sum(d < 0 for d in diffs)} of {len(diffs)} pairs faster here")  # fmt: skip
    path = write_result(
        "coldstart-scale-from-zero",
        quick=args.quick,
        config={"starts": starts, "text": TEXT, "env": BENCH_ENV | ENV, "probe": False},
        results=results,
        targets={"first_audio_s": GOAL_FIRST_AUDIO_S},
        out=args.out,
    )
    print(f"\nwrote {path}")


@contextlib.contextmanager
def python_path(source: Path | None) -> Iterator[None]:
    """Children started inside import voxserve from ``source`` (None: this checkout)."""
    before = os.environ.get("PYTHONPATH")
    if source is not None:
        os.environ["PYTHONPATH"] = str(source)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def repeat(n: int, fn: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
    return [fn() for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 starts of each kind")
    parser.add_argument("--starts", type=int, default=5, help="starts of each kind (default 5)")
    parser.add_argument("--label", default="", help="a name for this run, kept in the JSON")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--mode", choices=("all", "scale-from-zero"), default="all",
        help="all (default): the phases and the serve starts with both model caches",
    )  # fmt: skip
    parser.add_argument(
        "--against", type=Path, default=None,
        help="scale-from-zero: alternate with this source tree (e.g. `git archive REV src`)",
    )  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.mode == "scale-from-zero":
        scale_from_zero(args)
        return
    starts = 2 if args.quick else args.starts
    load_before = os.getloadavg()

    phases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="voxserve-coldstart-") as tmp:
        first_runs, reused_runs = [], []
        for i in range(starts):
            cache = Path(tmp) / f"phases-{i}"
            first_runs.append(run_child(cache))
            reused_runs.append(run_child(cache))
        phases = {"first": fold(first_runs), "reused": fold(reused_runs)}
        phases["runs"] = {"first": first_runs, "reused": reused_runs}

        first, reused = [], []
        for i in range(starts):
            cache = Path(tmp) / f"serve-{i}"
            first.append(one_start(cache))
            reused.append(one_start(cache))

    def table(runs: list[dict[str, Any]]) -> dict[str, Any]:
        keys = ("ready_s", "first_audio_s", "rss_at_ready_mb", "sigterm_exit_s")
        return {k: summary([r[k] for r in runs], digits=3) for k in keys} | {
            "exit_codes": sorted({int(r["exit_code"]) for r in runs})
        }

    results = {
        "label": args.label,
        "load_average_before": [round(x, 2) for x in load_before],
        "phases": phases,
        "scale_from_zero": {"first": table(first), "reused": table(reused)},
        "samples": {"first": first, "reused": reused},
    }
    rows = []
    for kind in ("first", "reused"):
        t = results["scale_from_zero"][kind]
        rows.append((kind, t["ready_s"]["median"], t["first_audio_s"]["median"],
                     t["first_audio_s"]["max"], t["rss_at_ready_mb"]["median"]))  # fmt: skip
    print_table(
        f"Scale from zero, median of {starts} starts each",
        ["model cache", "ready s", "first audio s", "max", "RSS MB"],
        rows,
    )
    for kind in ("first", "reused"):
        print_table(
            f"Phases ({kind} start), median s",
            ["step", "s"],
            [*phases[kind]["steps_median_s"].items(),
             *((m, s["median"]) for m, s in phases[kind]["milestones"].items())],
        )  # fmt: skip
    path = write_result(
        "coldstart",
        quick=args.quick,
        config={"starts": starts, "text": TEXT, "env": BENCH_ENV, "results_dir": str(RESULTS)},
        results=results,
        targets={"first_audio_s": GOAL_FIRST_AUDIO_S},
        out=args.out,
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
