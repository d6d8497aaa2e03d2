"""Speech to text: voxserve's transcription against bare faster-whisper, and beside speech.

Starts the real server (``tests/live.py``'s LiveServer: ``python -m voxserve serve`` on a
free 127.0.0.1 port, cache off, CPU, log level INFO because LiveServer reads the ports
from the server's "listening" line) and makes its audio with it: English texts from
texts.py synthesized with the bundled voice (``/v1/audio/speech``, wav, noise 0),
resampled once to 16 kHz and written as 16-bit mono WAV, so that every side decodes the
very same file without resampling. Then, side by side in one run:

1. Overhead, one request at a time, on a ~6 s clip and a ~60 s recording (its pieces
   synthesized one by one and joined with 0.5 s of silence). Sides, in a rotated order
   every round, 50 ms apart:

   - ``voxserve``: ``POST /v1/audio/transcriptions`` (model whisper-1, i.e. the default
     whisper-tiny.en; json) over one keep-alive httpx client;
   - ``bare``: ``faster_whisper.WhisperModel(dir, device="cpu", compute_type="int8",
     cpu_threads=1, num_workers=LANES)``, voxserve's own configuration (one thread per
     lane, one replica per lane), with voxserve's options: ``language="en"``, beam 1,
     ``best_of=1``, ``condition_on_previous_text=False``, the temperature fallback list,
     voice activity filtering only for audio longer than one 30 s window (voxserve's
     ``auto``). It is given the samples that ``faster_whisper.decode_audio`` made of the
     same file beforehand, so the model's work alone is the reference: voxserve's HTTP,
     upload, decoding and lanes all count as its overhead;
   - ``decode``: ``faster_whisper.decode_audio`` of the file, what a bare caller with a
     file pays on top (``ratio_voxserve_over_bare_with_decode``);
   - ``bare_all_cores`` (for information): ``bare`` with ``cpu_threads=CORES,
     num_workers=1``, what a lone script would do.

   Ratio voxserve / bare from the medians, **target <= 1.05** (5 % overhead); also the
   median of the per-round ratios and min / min (the least disturbed runs, for a busy
   machine). ``same_text`` checks both sides heard the same words.
2. Real-time factor per installed model (whisper-tiny.en, whisper-base) through voxserve
   over HTTP: request seconds / audio seconds on both recordings, median over rounds, the
   models alternating. No language is given, so a multilingual model detects it.
3. Mixed load at 8 closed-loop clients: 4 ``speech`` clients stream short replies
   (texts.SHORT, wav; time to first audio past the 44-byte header, and the whole time)
   and 4 ``transcribe`` clients upload ~35-62 s recordings. Three phases, each bounded in
   time and requests: speech alone (4 clients), transcription alone (4 clients) and both
   (8 clients), run in turn, the order reversed every other cycle. In the mixed phase a
   side whose time is up keeps sending (unmeasured "filler") while the other side still
   has measured requests running, so that no measured request runs alone at the end.
   The server runs with VOXSERVE_MAX_WAIT_SECONDS=600 so that admission does not refuse
   the benchmark's own load; a 503 would be counted as ``refused``.

Run: ``.venv/bin/python benchmarks/bench_asr.py [--quick]`` (about 7 minutes on a
2-core machine; ``--quick`` under a minute, the ~35 s recording as the long one).

``results`` of the JSON::

    audio:    {clip_6s|recording_60s|recording_35s|recording_48s: {seconds, chars, pieces}}
    overhead: {lanes, cores, model, options: {...}, same_options_as_voxserve,
               clips: {clip_6s|recording_60s: {audio_s, vad, same_text, text_voxserve,
                 text_bare, wer: {voxserve|bare|bare_all_cores: float},
                 seconds: {voxserve|bare|bare_all_cores|decode: summary},
                 ratio_voxserve_over_bare: float (median / median),
                 ratio_per_round: summary, ratio_min_over_min: float,
                 ratio_voxserve_over_bare_with_decode: float,
                 ratio_per_round_with_decode: summary,
                 ratio_voxserve_over_bare_all_cores: float, overhead_pct: float, loop}}}
    rtf:      {models: {model: {clip_6s|recording_60s: {audio_s, rtf: summary,
                seconds: summary, wer}}}, loop}
    mixed:    {clients: {speech, transcribe}, phase_s, cycles,
               phases: {speech_alone|transcribe_alone|mixed: {
                 speech: {requests, errors, refused, error_samples, filler, filler_errors,
                          ttfa_s: pcts, total_s: pcts, measured_wall_s, throughput_rps,
                          audio_per_s},
                 transcribe: {requests, errors, refused, error_samples, filler,
                              filler_errors, latency_s: pcts, rtf: pcts, measured_wall_s,
                              throughput_rps, audio_per_s},
                 wall_s}},
               ratios_mixed_over_alone: {speech_ttfa_p50, speech_ttfa_p95, speech_total_p50,
                 speech_total_p95, transcribe_latency_p50, transcribe_latency_p95,
                 speech_throughput, transcribe_throughput}}

where ``summary`` is common.summary and ``pcts`` is ``{n, p50, p95, max}`` in seconds.
``measured_wall_s`` runs from the phase's start to the end of that side's last measured
request; throughputs are measured requests (or audio seconds) over it.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH_ENV,
    Budget,
    _version,
    cores,
    import_live_server,
    median,
    parse_args,
    percentile,
    print_table,
    summary,
    verdict,
    write_result,
)
from texts import PARAGRAPHS, SHORT

OVERHEAD_TARGET = 1.05
VOICE = "en_US-joe-medium"
SPEECH = "/v1/audio/speech"
TRANSCRIPTIONS = "/v1/audio/transcriptions"
RATE = 16_000
#: What voxserve passes faster-whisper (src/voxserve/asr/whisper.py), written out here so
#: that the bare side does not depend on voxserve; checked against it at run time.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
WINDOW_S = 30.0
GAP_S = 0.5
#: Pause before each timed side: CTranslate2's OpenMP threads spin briefly after a run.
SETTLE_S = 0.05
#: INFO: LiveServer reads the server's ports from its "listening" line, logged at INFO.
SERVER_ENV = {**BENCH_ENV, "VOXSERVE_LOG_LEVEL": "INFO", "VOXSERVE_MAX_WAIT_SECONDS": "600"}

#: The recordings, as pieces of texts.py joined with GAP_S of silence.
RECORDINGS: dict[str, tuple[str, ...]] = {
    "clip_6s": (" ".join((SHORT[1], SHORT[2], SHORT[4])),),
    "recording_35s": PARAGRAPHS[:3],
    "recording_48s": PARAGRAPHS,
    "recording_60s": (*PARAGRAPHS, *SHORT),
}


# -- audio --------------------------------------------------------------------------------


def pcm_of_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit mono samples and rate of a WAV, also of a streamed one whose sizes say 'unknown'."""
    offset, rate = 12, 0
    while offset + 8 <= len(data):
        chunk = data[offset : offset + 4]
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        if chunk == b"fmt ":
            rate = int.from_bytes(data[offset + 12 : offset + 16], "little")
        elif chunk == b"data":
            end = len(data) - (len(data) - offset - 8) % 2
            return np.frombuffer(data[offset + 8 : end], dtype="<i2"), rate
        offset += 8 + size + (size & 1)
    raise ValueError("a WAV file without a data chunk")


def wav16k(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


@dataclass(frozen=True)
class Recording:
    name: str
    text: str
    wav: bytes
    seconds: float


def make_audio(client: httpx.Client, names: list[str]) -> dict[str, Recording]:
    """The recordings, synthesized by the server (noise 0), at 16 kHz."""
    from voxserve.asr import to_whisper_rate

    pieces: dict[str, np.ndarray] = {}
    made: dict[str, Recording] = {}
    for name in names:
        parts = []
        for text in RECORDINGS[name]:
            if text not in pieces:
                response = client.post(SPEECH, json=speech_body(text, stream=False))
                response.raise_for_status()
                pcm, rate = pcm_of_wav(response.content)
                pieces[text] = to_whisper_rate(pcm.astype(np.float32) / 32768, rate)
            parts += [pieces[text], np.zeros(int(GAP_S * RATE), np.float32)]
        audio = np.concatenate(parts[:-1])
        samples = np.clip(np.round(audio * 32768), -32768, 32767).astype(np.int16)
        text = " ".join(RECORDINGS[name])
        made[name] = Recording(name, text, wav16k(samples), samples.size / RATE)
    return made


def speech_body(text: str, *, stream: bool) -> dict[str, Any]:
    return {
        "model": "tts-1",
        "input": text,
        "voice": VOICE,
        "response_format": "wav",
        "stream": stream,
        "noise_scale": 0.0,
        "noise_w": 0.0,
    }


# -- the two sides ------------------------------------------------------------------------


def transcribe_http(client: httpx.Client, wav: bytes, model: str = "whisper-1") -> str:
    response = client.post(
        TRANSCRIPTIONS,
        files={"file": ("audio.wav", wav, "audio/wav")},
        data={"model": model, "response_format": "json"},
    )
    response.raise_for_status()
    return str(response.json()["text"])


class Bare:
    """faster-whisper alone, with voxserve's options."""

    def __init__(self, directory: Path, *, threads: int, workers: int) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        from faster_whisper import WhisperModel

        self.threads, self.workers = threads, workers
        self.model = WhisperModel(
            str(directory),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            num_workers=workers,
            local_files_only=True,
        )

    def transcribe(self, audio: np.ndarray) -> str:
        seconds = audio.size / RATE
        segments, _info = self.model.transcribe(
            audio,
            task="transcribe",
            language="en",
            temperature=list(FALLBACK_TEMPERATURES),
            beam_size=1,
            best_of=1,
            word_timestamps=False,
            vad_filter=seconds > WINDOW_S,
            condition_on_previous_text=False,
        )
        return " ".join(s.text.strip() for s in segments if s.text.strip())


def wer(reference: str, heard: str) -> float | None:
    try:
        from voxserve.asr.wer import word_error_rate
    except ImportError:  # the eval extra is missing
        return None
    return round(word_error_rate(reference, heard), 4)


def clocked(fn: Callable[[], str]) -> tuple[float, str]:
    time.sleep(SETTLE_S)
    start = time.perf_counter()
    text = fn()
    return time.perf_counter() - start, text


# -- 1. overhead --------------------------------------------------------------------------


def measure_overhead(
    client: httpx.Client, audio: dict[str, Recording], model_dir: Path, quick: bool
) -> dict[str, Any]:
    from faster_whisper import decode_audio

    from voxserve.asr.whisper import FALLBACK_TEMPERATURES as VOXSERVE_TEMPERATURES

    lanes, all_cores = cores(), cores()
    bare = Bare(model_dir, threads=1, workers=lanes)
    bare_all = Bare(model_dir, threads=all_cores, workers=1)

    def decode(recording: Recording) -> np.ndarray:
        return np.asarray(decode_audio(io.BytesIO(recording.wav), sampling_rate=RATE))

    samples = {name: decode(recording) for name, recording in audio.items()}
    sides: dict[str, Callable[[Recording], str]] = {
        "voxserve": lambda r: transcribe_http(client, r.wav),
        "bare": lambda r: bare.transcribe(samples[r.name]),
        "bare_all_cores": lambda r: bare_all.transcribe(samples[r.name]),
        "decode": lambda r: str(decode(r).size),
    }
    names = list(sides)
    clips: dict[str, Any] = {}
    long_name = "recording_35s" if quick else "recording_60s"
    # name: (rounds, seconds, rounds with --quick, seconds with --quick)
    plan = {"clip_6s": (12, 40, 2, 12), long_name: (7, 120, 1, 30)}
    for clip, (rounds, seconds, quick_rounds, quick_s) in plan.items():
        recording = audio[clip]
        heard: dict[str, str] = {}
        if not quick or clip == "clip_6s":  # warm-up; --quick warms on the short clip only
            for side in names:
                heard[side] = sides[side](recording)
        times: dict[str, list[float]] = {side: [] for side in names}
        ratios, ratios_decode = [], []
        budget = Budget(quick_rounds if quick else rounds, quick_s if quick else seconds)
        for r in budget:
            took: dict[str, float] = {}
            for side in names[r % len(names) :] + names[: r % len(names)]:
                took[side], heard[side] = clocked(
                    lambda side=side, recording=recording: sides[side](recording)
                )
                times[side].append(took[side])
            ratios.append(took["voxserve"] / took["bare"])
            ratios_decode.append(took["voxserve"] / (took["bare"] + took["decode"]))
        vox, ref = median(times["voxserve"]), median(times["bare"])
        ratio = vox / ref
        clips[clip] = {
            "audio_s": round(recording.seconds, 3),
            "vad": recording.seconds > WINDOW_S,
            "same_text": heard["voxserve"] == heard["bare"],
            "text_voxserve": heard["voxserve"],
            "text_bare": heard["bare"] if heard["bare"] != heard["voxserve"] else "(same)",
            "wer": {side: wer(recording.text, heard[side]) for side in names if side != "decode"},
            "seconds": {side: summary(times[side]) for side in names},
            "ratio_voxserve_over_bare": round(ratio, 4),
            "ratio_per_round": summary(ratios, digits=4),
            "ratio_min_over_min": round(min(times["voxserve"]) / min(times["bare"]), 4),
            "ratio_voxserve_over_bare_with_decode": round(vox / (ref + median(times["decode"])), 4),
            "ratio_per_round_with_decode": summary(ratios_decode, digits=4),
            "ratio_voxserve_over_bare_all_cores": round(vox / median(times["bare_all_cores"]), 4),
            "overhead_pct": round((ratio - 1) * 100, 2),
            "loop": budget.report(),
        }
    return {
        "lanes": lanes,
        "cores": all_cores,
        "model": "whisper-tiny.en",
        "model_dir": str(model_dir),
        "options": {
            "compute_type": "int8",
            "bare": {"cpu_threads": 1, "num_workers": lanes},
            "bare_all_cores": {"cpu_threads": all_cores, "num_workers": 1},
            "input": "16 kHz float32 samples, decoded beforehand by faster_whisper.decode_audio",
            "language": "en",
            "beam_size": 1,
            "best_of": 1,
            "condition_on_previous_text": False,
            "temperature": list(FALLBACK_TEMPERATURES),
            "vad_filter": f"audio longer than {WINDOW_S:g} s",
        },
        "same_options_as_voxserve": tuple(VOXSERVE_TEMPERATURES) == FALLBACK_TEMPERATURES,
        "clips": clips,
    }


# -- 2. real-time factor per model --------------------------------------------------------


def installed_models(client: httpx.Client) -> list[str]:
    """The speech recognition models the server has (by voxserve's own discovery)."""
    from voxserve import Settings
    from voxserve.asr import discover

    settings = Settings.load()
    found = discover(settings.asr_model, settings.resolved_model_cache_dir())
    listed = {m["id"] for m in client.get("/v1/models").json()["data"]}
    return [name for name in found if name in listed]


def measure_rtf(client: httpx.Client, audio: dict[str, Recording], quick: bool) -> dict[str, Any]:
    models = installed_models(client)
    clips = ["clip_6s"] if quick else ["clip_6s", "recording_60s"]
    for model in models:  # warm-up: loads the model
        transcribe_http(client, audio["clip_6s"].wav, model)
    times: dict[str, dict[str, list[float]]] = {m: {c: [] for c in clips} for m in models}
    heard: dict[str, dict[str, str]] = {m: {} for m in models}
    budget = Budget(1 if quick else 4, 15 if quick else 100)
    for r in budget:
        for model in models if r % 2 == 0 else models[::-1]:
            for clip in clips:
                took, heard[model][clip] = clocked(
                    lambda m=model, c=clip: transcribe_http(client, audio[c].wav, m)
                )
                times[model][clip].append(took)
    return {
        "models": {
            model: {
                clip: {
                    "audio_s": round(audio[clip].seconds, 3),
                    "rtf": summary([t / audio[clip].seconds for t in times[model][clip]], digits=4),
                    "seconds": summary(times[model][clip]),
                    "wer": wer(audio[clip].text, heard[model][clip]),
                }
                for clip in clips
            }
            for model in models
        },
        "loop": budget.report(),
    }


# -- 3. mixed load ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    kind: str
    ok: bool
    refused: bool
    measured: bool
    latency: float
    ttfa: float
    audio_s: float
    error: str = ""


def send_speech(client: httpx.Client, text: str, measured: bool) -> Sample:
    start = time.perf_counter()
    first = 0.0
    received = bytearray()
    with client.stream("POST", SPEECH, json=speech_body(text, stream=True)) as response:
        if response.status_code != 200:
            body = response.read()[:200]
            took = time.perf_counter() - start
            refused = response.status_code == 503
            error = f"HTTP {response.status_code}: {body!r}"
            return Sample("speech", False, refused, measured, took, 0.0, 0.0, error)
        for data in response.iter_raw():
            received += data
            if not first and len(received) > 44:
                first = time.perf_counter() - start
    pcm, rate = pcm_of_wav(bytes(received))
    took = time.perf_counter() - start
    return Sample("speech", True, False, measured, took, first, pcm.size / rate)


def send_transcription(client: httpx.Client, recording: Recording, measured: bool) -> Sample:
    start = time.perf_counter()
    response = client.post(
        TRANSCRIPTIONS,
        files={"file": ("audio.wav", recording.wav, "audio/wav")},
        data={"model": "whisper-1", "response_format": "json"},
    )
    took = time.perf_counter() - start
    if response.status_code != 200 or not response.json().get("text"):
        refused = response.status_code == 503
        error = f"HTTP {response.status_code}: {response.content[:200]!r}"
        return Sample("transcribe", False, refused, measured, took, took, 0.0, error)
    return Sample("transcribe", True, False, measured, took, took, recording.seconds)


class Phase:
    """One phase of the mixed load: closed-loop clients until the time or count is up."""

    def __init__(self, url: str, seconds: float, caps: dict[str, int], mixed: bool) -> None:
        self.url = url
        self.caps = caps
        self.mixed = mixed
        self.lock = threading.Lock()
        self.started = dict.fromkeys(caps, 0)
        self.running = dict.fromkeys(caps, 0)
        self.samples: list[Sample] = []
        self.last_end = dict.fromkeys(caps, 0.0)
        self.start = time.perf_counter()
        self.deadline = time.monotonic() + seconds
        self.hard_deadline = self.deadline + 120

    def _open(self, kind: str) -> bool:
        return time.monotonic() < self.deadline and self.started[kind] < self.caps[kind]

    def _next(self, kind: str, other: str | None) -> bool | None:
        """True: a measured request; False: filler; None: stop."""
        with self.lock:
            if self._open(kind):
                self.started[kind] += 1
                self.running[kind] += 1
                return True
            if (
                other is not None
                and time.monotonic() < self.hard_deadline
                and (self._open(other) or self.running[other])
            ):
                return False
            return None

    def client(self, kind: str, work: list[Any], offset: int) -> None:
        other = next((k for k in self.caps if k != kind), None) if self.mixed else None
        send: Callable[[httpx.Client, Any, bool], Sample]
        send = send_speech if kind == "speech" else send_transcription  # type: ignore[assignment]
        n = offset
        with httpx.Client(base_url=self.url, timeout=600) as client:
            while (measured := self._next(kind, other)) is not None:
                try:
                    sample = send(client, work[n % len(work)], measured)
                except (httpx.HTTPError, ValueError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    sample = Sample(kind, False, False, measured, 0.0, 0.0, 0.0, error)
                n += 1
                with self.lock:
                    self.samples.append(sample)
                    if measured:
                        self.running[kind] -= 1
                        self.last_end[kind] = time.perf_counter() - self.start


def pcts(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "max": round(max(values), 4),
    }


def run_phase(
    url: str, clients: dict[str, int], work: dict[str, list[Any]], seconds: float, cap: int
) -> tuple[list[Sample], dict[str, float], float]:
    caps = {kind: cap if kind == "transcribe" else cap * 10 for kind in clients}
    phase = Phase(url, seconds, caps, mixed=len(clients) > 1)
    threads = [
        threading.Thread(target=phase.client, args=(kind, work[kind], i * 3), daemon=True)
        for kind, count in clients.items()
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return phase.samples, phase.last_end, time.perf_counter() - phase.start


def side_report(kind: str, samples: list[Sample], wall: float) -> dict[str, Any]:
    mine = [s for s in samples if s.kind == kind]
    measured = [s for s in mine if s.measured]
    good = [s for s in measured if s.ok]
    errors = [s for s in mine if not s.ok]
    report: dict[str, Any] = {
        "requests": len(measured),
        "errors": sum(not s.ok and not s.refused for s in measured),
        "refused": sum(s.refused for s in measured),
        "error_samples": sorted({s.error for s in errors})[:3],
        "filler": len(mine) - len(measured),
        "filler_errors": sum(not s.ok for s in mine if not s.measured),
    }
    if kind == "speech":
        report["ttfa_s"] = pcts([s.ttfa for s in good])
        report["total_s"] = pcts([s.latency for s in good])
    else:
        report["latency_s"] = pcts([s.latency for s in good])
        report["rtf"] = pcts([s.latency / s.audio_s for s in good])
    report["measured_wall_s"] = round(wall, 3)
    report["throughput_rps"] = round(len(good) / wall, 4) if wall else 0.0
    report["audio_per_s"] = round(sum(s.audio_s for s in good) / wall, 4) if wall else 0.0
    return report


def measure_mixed(url: str, audio: dict[str, Recording], quick: bool) -> dict[str, Any]:
    clients = {"speech": 4, "transcribe": 4}
    uploads = (
        [audio["recording_35s"]]
        if quick
        else [audio["recording_35s"], audio["recording_48s"], audio["recording_60s"]]
    )
    work: dict[str, list[Any]] = {"speech": list(SHORT), "transcribe": uploads}
    phase_s, cycles, cap = (6.0, 1, 4) if quick else (25.0, 2, 24)
    layouts = {
        "speech_alone": {"speech": clients["speech"]},
        "transcribe_alone": {"transcribe": clients["transcribe"]},
        "mixed": clients,
    }
    collected: dict[str, list[Sample]] = {name: [] for name in layouts}
    walls: dict[str, dict[str, float]] = {name: dict.fromkeys(clients, 0.0) for name in layouts}
    phase_wall = dict.fromkeys(layouts, 0.0)
    order = list(layouts)
    for cycle in range(cycles):
        for name in order if cycle % 2 == 0 else order[::-1]:
            samples, last_end, wall = run_phase(url, layouts[name], work, phase_s, cap)
            collected[name] += samples
            phase_wall[name] += wall
            for kind, end in last_end.items():
                walls[name][kind] += end
            time.sleep(1.0)
    phases = {
        name: {
            **{kind: side_report(kind, collected[name], walls[name][kind]) for kind in kinds},
            "wall_s": round(phase_wall[name], 3),
        }
        for name, kinds in layouts.items()
    }

    def ratio(kind: str, key: str, q: str) -> float:
        alone = phases[f"{kind}_alone"][kind][key].get(q, float("nan"))
        mixed = phases["mixed"][kind][key].get(q, float("nan"))
        return round(mixed / alone, 3) if alone else float("nan")

    def throughput(kind: str) -> float:
        alone = phases[f"{kind}_alone"][kind]["throughput_rps"]
        return round(phases["mixed"][kind]["throughput_rps"] / alone, 3) if alone else 0.0

    return {
        "clients": clients,
        "phase_s": phase_s,
        "cycles": cycles,
        "transcribe_requests_cap_per_phase": cap,
        "speech_requests_cap_per_phase": cap * 10,
        "uploads": [r.name for r in uploads],
        "speech_texts": "texts.SHORT",
        "phases": phases,
        "ratios_mixed_over_alone": {
            "speech_ttfa_p50": ratio("speech", "ttfa_s", "p50"),
            "speech_ttfa_p95": ratio("speech", "ttfa_s", "p95"),
            "speech_total_p50": ratio("speech", "total_s", "p50"),
            "speech_total_p95": ratio("speech", "total_s", "p95"),
            "transcribe_latency_p50": ratio("transcribe", "latency_s", "p50"),
            "transcribe_latency_p95": ratio("transcribe", "latency_s", "p95"),
            "speech_throughput": throughput("speech"),
            "transcribe_throughput": throughput("transcribe"),
        },
    }


# -- main ---------------------------------------------------------------------------------


def tiny_directory() -> Path:
    from voxserve.asr import discover
    from voxserve.asr.models import TINY_EN

    return discover(TINY_EN, Path(".cache/voxserve/models"))[TINY_EN].directory()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    started = time.monotonic()
    live_server = import_live_server()
    names = ["clip_6s", "recording_35s"] if args.quick else list(RECORDINGS)
    with (
        live_server(env=SERVER_ENV, startup_timeout=180) as server,
        httpx.Client(base_url=server.url, timeout=600) as client,
    ):
        audio = make_audio(client, names)
        print(f"Audio made in {time.monotonic() - started:.1f} s", flush=True)
        overhead = measure_overhead(client, audio, tiny_directory(), args.quick)
        print(f"Overhead measured at {time.monotonic() - started:.1f} s", flush=True)
        rtf = measure_rtf(client, audio, args.quick)
        print(f"Real-time factors measured at {time.monotonic() - started:.1f} s", flush=True)
        mixed = measure_mixed(server.url, audio, args.quick)

    path = write_result(
        "asr",
        quick=args.quick,
        config={
            "transcriptions": TRANSCRIPTIONS,
            "speech": SPEECH,
            "voice": VOICE,
            "audio": "texts.py synthesized by the server (wav, noise 0), resampled once "
            f"to 16 kHz 16-bit mono, pieces joined with {GAP_S:g} s of silence",
            "server_env": SERVER_ENV,
            "client": f"httpx {httpx.__version__}",
            "faster_whisper": _version("faster-whisper"),
            "ctranslate2": _version("ctranslate2"),
        },
        results={
            "audio": {
                r.name: {
                    "seconds": round(r.seconds, 3),
                    "chars": len(r.text),
                    "pieces": len(RECORDINGS[r.name]),
                }
                for r in audio.values()
            },
            "overhead": overhead,
            "rtf": rtf,
            "mixed": mixed,
        },
        targets={"overhead_ratio_max": OVERHEAD_TARGET},
        out=args.out,
    )
    report(overhead, rtf, mixed)
    print(f"Wrote {path} in {time.monotonic() - started:.1f} s")


def report(overhead: dict[str, Any], rtf: dict[str, Any], mixed: dict[str, Any]) -> None:
    print_table(
        f"Overhead: voxserve over HTTP vs bare faster-whisper ({overhead['model']}, "
        f"{overhead['lanes']} lanes), median seconds",
        [
            "audio",
            "s",
            "rounds",
            "voxserve",
            "bare",
            "ratio",
            f"<= {OVERHEAD_TARGET}",
            "min/min",
            "with decode",
            "bare_all_cores",
            "same_text",
            "wer",
        ],
        [
            (
                clip,
                c["audio_s"],
                c["loop"]["rounds"],
                c["seconds"]["voxserve"]["median"],
                c["seconds"]["bare"]["median"],
                c["ratio_voxserve_over_bare"],
                verdict(c["ratio_voxserve_over_bare"], OVERHEAD_TARGET),
                c["ratio_min_over_min"],
                c["ratio_voxserve_over_bare_with_decode"],
                c["seconds"]["bare_all_cores"]["median"],
                c["same_text"],
                c["wer"]["voxserve"],
            )
            for clip, c in overhead["clips"].items()
        ],
    )
    print_table(
        f"Real-time factor through voxserve (median of {rtf['loop']['rounds']} rounds)",
        ["model", "audio", "audio s", "rtf", "p90", "wer"],
        [
            (model, clip, r["audio_s"], r["rtf"]["median"], r["rtf"]["p90"], r["wer"])
            for model, clips in rtf["models"].items()
            for clip, r in clips.items()
        ],
    )
    rows: list[tuple[object, ...]] = []
    for name, phase in mixed["phases"].items():
        if "speech" in phase:
            s = phase["speech"]
            for what, key in (("speech TTFA", "ttfa_s"), ("speech total", "total_s")):
                p = s[key]
                rows.append((name, what, s["requests"], p.get("p50"), p.get("p95"),
                             s["throughput_rps"], s["errors"], s["refused"]))  # fmt: skip
        if "transcribe" in phase:
            t, p = phase["transcribe"], phase["transcribe"]["latency_s"]
            rows.append((name, "transcription", t["requests"], p.get("p50"), p.get("p95"),
                         t["throughput_rps"], t["errors"], t["refused"]))  # fmt: skip
    print_table(
        f"Mixed load, {mixed['clients']['speech']} speech + {mixed['clients']['transcribe']} "
        "transcription clients (seconds; throughput in requests/s)",
        ["phase", "what", "n", "p50", "p95", "req/s", "errors", "refused"],
        rows,
    )
    ratios = mixed["ratios_mixed_over_alone"]
    print("\nMixed / alone: " + ", ".join(f"{k} {v}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
