"""Every Prometheus metric voxserve exports, on an injected registry.

Build one :class:`Metrics` per app (tests pass a fresh ``CollectorRegistry``); nothing is
registered at import time. Label values are bounded: routes are the route templates,
formats and voices come from the server's own lists, never from raw user input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

#: 5 ms to 60 s: fits p50/p95/p99 of short replies through long articles.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0,
)  # fmt: skip
RTF_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)


class Metrics:
    """The service's metrics, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if self.registry is not REGISTRY:  # the global one has a process collector already
            ProcessCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "voxserve_requests", "HTTP requests served.", ["route", "status"], registry=r
        )
        self.request_duration = Histogram(
            "voxserve_request_duration_seconds", "Whole-request duration.",
            ["route", "format"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.time_to_first_audio = Histogram(
            "voxserve_time_to_first_audio_seconds", "From request to the first audio bytes.",
            ["route", "format"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rtf = Histogram(
            "voxserve_real_time_factor", "Synthesis time / audio duration per request.",
            ["voice"], buckets=RTF_BUCKETS, registry=r,
        )  # fmt: skip
        self.characters = Counter(
            "voxserve_characters", "Input characters synthesized.", ["voice"], registry=r
        )
        self.audio_seconds = Counter(
            "voxserve_audio_seconds", "Seconds of audio produced.", ["voice"], registry=r
        )
        self.in_flight = Gauge("voxserve_requests_in_flight", "Requests being served.", registry=r)
        self.errors = Counter(
            "voxserve_errors", "Error responses, by HTTP status.", ["status"], registry=r
        )
        self.abandoned = Counter(
            "voxserve_requests_abandoned",
            "Requests whose work was cancelled because nobody would receive it, by reason "
            "(disconnected, stopped_reading, body_timeout, drain_timeout).",
            ["reason"], registry=r,
        )  # fmt: skip
        self.admission_refused = Counter(
            "voxserve_admission_refused",
            "Requests refused with 503 because their estimated wait was over the bound.",
            registry=r,
        )
        self.admitted_work = Gauge(
            "voxserve_admitted_work_seconds",
            "Estimated inference seconds the admitted requests still need.",
            registry=r,
        )
        self.voices_loaded = Gauge("voxserve_voices_loaded", "Voices loaded in memory.", registry=r)
        self.queue_depth = Gauge(
            "voxserve_queue_depth", "Sentences waiting for inference.", ["voice"], registry=r
        )
        self.batch_size = Histogram(
            "voxserve_batch_size", "Sentences per inference call.", ["voice"],
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64), registry=r,
        )  # fmt: skip
        self.queue_wait = Histogram(
            "voxserve_queue_wait_seconds", "Time a sentence waited in the queue.", ["voice"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.inference = Histogram(
            "voxserve_inference_seconds", "Duration of one inference call.", ["voice"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.inference_runs = Counter(
            "voxserve_inference_runs",
            "Inference calls by mode: on every core (exclusive) or on one lane of several.",
            ["voice", "mode"], registry=r,
        )  # fmt: skip
        self.stream_late_sentences = Counter(
            "voxserve_stream_late_sentences",
            "Streamed sentences ready only after playback had reached them (a gap was heard).",
            ["voice"], registry=r,
        )  # fmt: skip
        self.stream_gap_seconds = Counter(
            "voxserve_stream_gap_seconds",
            "Silence a listener heard mid-stream while waiting for the next sentence.",
            ["voice"], registry=r,
        )  # fmt: skip
        self.model_load = Gauge(
            "voxserve_model_load_seconds", "Time it took to load each voice.", ["voice"], registry=r
        )
        self.cache_requests = Counter(
            "voxserve_cache_requests", "Cache lookups by backend and result (hit, miss, bypass).",
            ["backend", "result"], registry=r,
        )  # fmt: skip
        self.cache_errors = Counter(
            "voxserve_cache_errors", "Cache failures served as misses, by backend and operation.",
            ["backend", "operation"], registry=r,
        )  # fmt: skip
        # Live speech over WebSocket (voxserve.server.live); its audio is timed in the
        # histograms above with route "/v1/audio/speech/live": time to first audio from a
        # piece of text being cut (its sentence complete) to its first audio sent.
        self.live_connections = Gauge(
            "voxserve_live_connections", "Open live speech (WebSocket) sessions.", registry=r
        )
        self.live_sessions = Counter(
            "voxserve_live_sessions",
            "Live speech sessions finished, by outcome (ok, error, disconnected).",
            ["outcome"], registry=r,
        )  # fmt: skip
        # Speech recognition (voxserve.asr), per model.
        self.asr_requests = Counter(
            "voxserve_asr_requests", "Transcriptions and translations finished, by outcome "
            "(ok, cancelled, error).", ["model", "task", "outcome"], registry=r,
        )  # fmt: skip
        self.asr_audio_seconds = Counter(
            "voxserve_asr_audio_seconds", "Seconds of uploaded audio recognized.", ["model"],
            registry=r,
        )  # fmt: skip
        self.asr_rtf = Histogram(
            "voxserve_asr_real_time_factor",
            "Inference time (decoding, detection, recognition) / audio duration per request.",
            ["model"], buckets=RTF_BUCKETS, registry=r,
        )  # fmt: skip
        self.asr_queue_wait = Histogram(
            "voxserve_asr_queue_wait_seconds", "Time a recognition step waited for a lane.",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.asr_inference = Histogram(
            "voxserve_asr_inference_seconds", "Duration of one recognition step (a window).",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        # The Wyoming door (voxserve.server.wyoming); its audio is timed in the histograms
        # above with route "wyoming/synthesize" or "wyoming/synthesize-stream".
        self.wyoming_connections = Gauge(
            "voxserve_wyoming_connections", "Open Wyoming connections.", registry=r
        )
        self.wyoming_requests = Counter(
            "voxserve_wyoming_requests",
            "Wyoming requests finished, by kind (describe, synthesize, synthesize-stream, "
            "transcribe) and outcome (ok, error, cancelled).",
            ["kind", "outcome"], registry=r,
        )  # fmt: skip
        self.ready = Gauge("voxserve_ready", "1 when the service is ready to serve.", registry=r)
        self.gpu = GpuCollector.register(r)

    def observe_synthesis(
        self, voice: str, characters: int, audio_seconds: float, elapsed: float
    ) -> None:
        """One request's synthesis: its characters, its audio and its real-time factor."""
        self.characters.labels(voice).inc(characters)
        self.audio_seconds.labels(voice).inc(audio_seconds)
        if audio_seconds > 0:
            self.rtf.labels(voice).observe(elapsed / audio_seconds)

    def add_voice(self, voice: str) -> None:
        """Export 0 for a voice's counters of rare events, so rates work before the first."""
        for mode in ("exclusive", "lane"):
            self.inference_runs.labels(voice, mode)
        self.stream_late_sentences.labels(voice)
        self.stream_gap_seconds.labels(voice)


class GpuCollector:
    """GPU utilization and memory from NVML, per device; registered only where NVML works."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._count = int(nvml.nvmlDeviceGetCount())

    @classmethod
    def register(cls, registry: CollectorRegistry) -> GpuCollector | None:
        """Register on ``registry`` when pynvml is installed and a driver answers."""
        try:
            import pynvml

            pynvml.nvmlInit()
            collector = cls(pynvml)
        except Exception:  # no pynvml, no driver, no GPU: the metrics are simply absent
            return None
        registry.register(collector)
        return collector

    def collect(self) -> Iterator[GaugeMetricFamily]:
        util = GaugeMetricFamily(
            "voxserve_gpu_utilization_ratio", "GPU busy fraction (NVML).", labels=["gpu"]
        )
        used = GaugeMetricFamily(
            "voxserve_gpu_memory_used_bytes", "GPU memory used.", labels=["gpu"]
        )
        total = GaugeMetricFamily("voxserve_gpu_memory_total_bytes", "GPU memory.", labels=["gpu"])
        for index in range(self._count):
            handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
            memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            util.add_metric([str(index)], rates.gpu / 100)
            used.add_metric([str(index)], memory.used)
            total.add_metric([str(index)], memory.total)
        yield from (util, used, total)
