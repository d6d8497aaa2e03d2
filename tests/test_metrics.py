"""Prometheus metrics (voxserve.metrics) read back from a real app on a fresh registry.

Every in-process test builds its own ``CollectorRegistry`` and runs ``create_app`` under
``TestClient`` as a context manager, so the lifespan loads the real Piper voice and warms
it up; values are then read with ``registry.get_sample_value``, as prometheus_client's
own tests do. The warm-up synthesis goes through the scheduler but not through the HTTP
responder, so request metrics start empty while scheduler metrics do not.

The last tests run the real server (tests/live.py) to check the separate metrics
listener and that no label value ever carries input text or an API key.
"""

from __future__ import annotations

import importlib.util
import io
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import soundfile
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from live import LiveServer
from voxserve.metrics import GpuCollector, Metrics
from voxserve.server.app import create_app
from voxserve.settings import Settings

VOICE = "en_US-joe-medium"
SPEECH = "/v1/audio/speech"
DETERMINISTIC: dict[str, Any] = {"noise_scale": 0, "noise_w": 0}

MakeClient = Callable[..., TestClient]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_client(registry: CollectorRegistry) -> MakeClient:
    """``make_client(**settings)``: a TestClient for a real app on this test's registry.

    Use it as a context manager so the lifespan (model load, warm-up, shutdown) runs.
    """

    def make(**overrides: Any) -> TestClient:
        settings = Settings(**{"espeak": False, "cache": "memory", "api_keys": "", **overrides})
        return TestClient(create_app(settings, registry=registry))

    return make


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value, 0.0 while the labelled child does not exist yet."""
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def label_values(registry: CollectorRegistry, metric: str, label: str) -> set[str]:
    """Every value ``label`` takes in the samples of ``metric`` (a family name)."""
    return {
        sample.labels[label]
        for family in registry.collect()
        if family.name == metric
        for sample in family.samples
        if label in sample.labels
    }


def speak(
    client: TestClient, text: str, *, headers: dict[str, str] | None = None, **options: Any
) -> httpx.Response:
    """A successful deterministic WAV request; ``options`` go into the JSON body."""
    body = {"input": text, "response_format": "wav", **DETERMINISTIC, **options}
    response = client.post(SPEECH, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


def wav_seconds(data: bytes) -> float:
    info = soundfile.info(io.BytesIO(data))
    assert info.samplerate == 22_050
    return float(info.frames / info.samplerate)


# -- request metrics ------------------------------------------------------------------------

TEXTS = (
    "The weather is lovely today.",
    "Please remember to bring your umbrella tomorrow.",
    "A quiet river runs past the old mill. Ducks swim along it.",
)


def test_speech_requests_are_counted_timed_and_measured(
    registry: CollectorRegistry, make_client: MakeClient
) -> None:
    """Three cache misses (two whole files, one streamed) move every request metric by 3.

    Audio seconds must match the decoded WAV durations (the counter adds exactly the
    samples produced; 2% leaves room for float sums). Characters count the normalized
    sentences, which for plain text is the input less the spaces between sentences.
    """
    route = {"route": SPEECH}
    voice = {"voice": VOICE}
    with make_client() as client:
        assert value(registry, "voxserve_requests_total", **route, status="200") == 0
        durations = [
            wav_seconds(speak(client, TEXTS[0], stream=False).content),
            wav_seconds(speak(client, TEXTS[1], stream=False).content),
            wav_seconds(speak(client, TEXTS[2], stream=True).content),
        ]

        assert value(registry, "voxserve_requests_total", **route, status="200") == 3
        wav = {**route, "format": "wav"}
        assert value(registry, "voxserve_request_duration_seconds_count", **wav) == 3
        assert value(registry, "voxserve_request_duration_seconds_sum", **wav) > 0
        assert value(registry, "voxserve_time_to_first_audio_seconds_count", **wav) == 3
        # Only the format asked for is labelled.
        mp3 = {**route, "format": "mp3"}
        assert registry.get_sample_value("voxserve_request_duration_seconds_count", mp3) is None
        assert value(registry, "voxserve_real_time_factor_count", **voice) == 3
        assert value(registry, "voxserve_real_time_factor_sum", **voice) > 0

        audio_seconds = value(registry, "voxserve_audio_seconds_total", **voice)
        assert audio_seconds == pytest.approx(sum(durations), rel=0.02)
        assert sum(durations) > 4  # three sentences of real speech, not silence stubs
        characters = value(registry, "voxserve_characters_total", **voice)
        typed = sum(len(t) for t in TEXTS)
        assert typed - len(TEXTS) - 1 <= characters <= typed

        assert value(registry, "voxserve_requests_in_flight") == 0
        assert value(registry, "voxserve_errors_total", status="200") == 0


def test_errors_are_counted_by_status_and_route(
    registry: CollectorRegistry, make_client: MakeClient
) -> None:
    with make_client() as client:
        unknown_voice = client.post(SPEECH, json={"input": "Hello.", "voice": "nobody"})
        too_fast = client.post(SPEECH, json={"input": "Hello.", "speed": 100})
        no_such_path = client.get("/no/such/path")

        assert (unknown_voice.status_code, too_fast.status_code) == (404, 422)
        assert no_such_path.status_code == 404
        assert value(registry, "voxserve_errors_total", status="404") == 2
        assert value(registry, "voxserve_errors_total", status="422") == 1
        assert value(registry, "voxserve_requests_total", route=SPEECH, status="404") == 1
        assert value(registry, "voxserve_requests_total", route=SPEECH, status="422") == 1
        assert value(registry, "voxserve_requests_total", route="other", status="404") == 1
        assert value(registry, "voxserve_requests_total", route=SPEECH, status="200") == 0
        assert value(registry, "voxserve_requests_in_flight") == 0


def test_unknown_paths_share_one_route_label_value(
    registry: CollectorRegistry, make_client: MakeClient
) -> None:
    """50 random paths add exactly one route label value, so label cardinality is bounded."""
    with make_client() as client:
        assert client.get("/healthz").status_code == 200
        before = label_values(registry, "voxserve_requests", "route")
        for _ in range(50):
            path = "/" + "/".join(secrets.token_urlsafe(6) for _ in range(3))
            assert client.get(path).status_code == 404

        after = label_values(registry, "voxserve_requests", "route")
        assert after - before == {"other"}
        assert value(registry, "voxserve_requests_total", route="other", status="404") == 50


def test_cache_miss_hit_hit_bypass_gives_a_hit_ratio_of_two_thirds(
    registry: CollectorRegistry, make_client: MakeClient
) -> None:
    text = "The museum closes early on Sundays."
    with make_client(cache="memory") as client:
        seen = [
            speak(client, text).headers["x-cache"],
            speak(client, text).headers["x-cache"],
            speak(client, text).headers["x-cache"],
            speak(client, text, headers={"Cache-Control": "no-cache"}).headers["x-cache"],
        ]

    assert seen == ["miss", "hit", "hit", "bypass"]
    hits = value(registry, "voxserve_cache_requests_total", backend="memory", result="hit")
    misses = value(registry, "voxserve_cache_requests_total", backend="memory", result="miss")
    bypasses = value(registry, "voxserve_cache_requests_total", backend="memory", result="bypass")
    assert (hits, misses, bypasses) == (2, 1, 1)
    assert hits / (hits + misses) == 2 / 3
    # The hits were served from the cache: only the miss and the bypass were synthesized.
    assert value(registry, "voxserve_real_time_factor_count", voice=VOICE) == 2


def test_scheduler_and_lifecycle_metrics(
    registry: CollectorRegistry, make_client: MakeClient
) -> None:
    """Batches, queue waits, runs and depth from real requests; readiness follows the
    lifespan.

    Each plain short sentence is one utterance, so the sum of batch sizes (items inferred)
    and the number of queue waits both grow by exactly the sentences sent, and by one more
    for a stream, whose first sentence (over twice the 1 s head) is inferred in two parts.
    """
    voice = {"voice": VOICE}
    client = make_client(cache="off")
    text = "The train to the coast leaves from platform nine at noon. We should hurry. Go."
    with client:
        assert value(registry, "voxserve_ready") == 1
        assert value(registry, "voxserve_voices_loaded") == 1
        assert value(registry, "voxserve_model_load_seconds", **voice) > 0
        items_before = value(registry, "voxserve_batch_size_sum", **voice)
        batches_before = value(registry, "voxserve_batch_size_count", **voice)
        waits_before = value(registry, "voxserve_queue_wait_seconds_count", **voice)
        inferences_before = value(registry, "voxserve_inference_seconds_count", **voice)

        speak(client, text, stream=False)
        assert value(registry, "voxserve_batch_size_sum", **voice) == items_before + 3
        assert value(registry, "voxserve_queue_wait_seconds_count", **voice) == waits_before + 3

        speak(client, text, stream=True)
        assert value(registry, "voxserve_batch_size_sum", **voice) == items_before + 3 + 4
        batches = value(registry, "voxserve_batch_size_count", **voice)
        assert batches > batches_before
        assert value(registry, "voxserve_queue_wait_seconds_count", **voice) == waits_before + 7
        runs = sum(
            value(registry, "voxserve_inference_runs_total", mode=mode, **voice)
            for mode in ("exclusive", "lane")
        )
        assert runs == batches  # every batch is one run, counted once by its mode
        assert value(registry, "voxserve_stream_gap_seconds_total", **voice) >= 0
        assert value(registry, "voxserve_queue_wait_seconds_sum", **voice) >= 0
        assert value(registry, "voxserve_inference_seconds_count", **voice) > inferences_before
        assert value(registry, "voxserve_queue_depth", **voice) == 0
        assert value(registry, "voxserve_ready") == 1

    assert value(registry, "voxserve_ready") == 0


# -- collectors ----------------------------------------------------------------------------


def test_fresh_registry_gets_the_process_collector(registry: CollectorRegistry) -> None:
    Metrics(registry)

    assert value(registry, "process_resident_memory_bytes") > 0
    assert value(registry, "process_start_time_seconds") > 0


def test_gpu_metrics_exist_only_where_nvml_answers(registry: CollectorRegistry) -> None:
    """No NVIDIA device (or no pynvml): register returns None and no voxserve_gpu_* sample
    exists. On a machine with both, the collector registers and reports GPU 0."""
    nvml_usable = importlib.util.find_spec("pynvml") is not None and Path("/dev/nvidiactl").exists()
    metrics = Metrics(registry)
    names = {s.name for family in registry.collect() for s in family.samples}
    gpu_names = {n for n in names if n.startswith("voxserve_gpu_")}

    if nvml_usable:
        assert metrics.gpu is not None
        assert value(registry, "voxserve_gpu_memory_total_bytes", gpu="0") > 0
    else:
        assert metrics.gpu is None
        assert GpuCollector.register(CollectorRegistry()) is None
        assert gpu_names == set()
        assert "voxserve_requests_in_flight" in names  # the registry itself is populated


class FakeNVML:
    """Just the pynvml calls GpuCollector makes, for two GPUs with known readings."""

    readings = ((37, 1_000, 8_000), (100, 6_500, 16_000))  # (util %, used, total)

    def nvmlDeviceGetCount(self) -> int:
        return len(self.readings)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=self.readings[handle][0], memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        _, used, total = self.readings[handle]
        return SimpleNamespace(used=used, total=total, free=total - used)


def test_gpu_collector_reports_each_device_as_a_ratio_and_bytes(
    registry: CollectorRegistry,
) -> None:
    registry.register(GpuCollector(FakeNVML()))

    assert value(registry, "voxserve_gpu_utilization_ratio", gpu="0") == pytest.approx(0.37)
    assert value(registry, "voxserve_gpu_utilization_ratio", gpu="1") == 1.0
    assert value(registry, "voxserve_gpu_memory_used_bytes", gpu="1") == 6_500
    assert value(registry, "voxserve_gpu_memory_total_bytes", gpu="0") == 8_000
    assert registry.get_sample_value("voxserve_gpu_utilization_ratio", {"gpu": "2"}) is None


# -- the metrics listener, over real HTTP -----------------------------------------------------

API_KEY = "sk-metrics-Q7ZxV1b9tLr2"
WRONG_KEY = "sk-wrong-M4pN8dK2sWq6"
LONG_TEXT = (
    "Quixotic pelicans from Wellington juggle marmalade jars beside the lighthouse, "
    "while seventeen bewildered accordion players rehearse a sonata for the harbourmaster. "
    "Nobody in the village remembers who invited the pelicans, but everyone agrees that "
    "their juggling has improved remarkably since the spring festival began."
)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(env={"VOXSERVE_API_KEYS": API_KEY, "VOXSERVE_ESPEAK": "false"}) as live:
        yield live


def scrape(server: LiveServer) -> str:
    response = httpx.get(server.metrics_url + "/metrics", timeout=30)
    assert response.status_code == 200
    return response.text


def test_metrics_listener_serves_prometheus_text(server: LiveServer) -> None:
    response = httpx.get(server.metrics_url + "/metrics", timeout=30)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert {"voxserve_requests", "voxserve_ready", "voxserve_real_time_factor"} <= set(families)
    assert families["voxserve_ready"].samples[0].value == 1
    assert families["process_resident_memory_bytes"].samples[0].value > 0


def test_api_port_does_not_serve_metrics(server: LiveServer) -> None:
    """Even with a valid key, /metrics is not a route of the API listener."""
    response = httpx.get(
        server.url + "/metrics", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    )

    assert response.status_code == 404
    assert "voxserve_" not in response.text


@pytest.mark.parametrize("path", ["/", "/metrics/", "/healthz", "/v1/audio/speech", "/metricsx"])
def test_metrics_listener_answers_404_on_other_paths(server: LiveServer, path: str) -> None:
    response = httpx.get(server.metrics_url + path, timeout=30)

    assert response.status_code == 404
    assert "voxserve_" not in response.text


def test_metric_labels_never_carry_input_text_or_api_keys(server: LiveServer) -> None:
    authorized = httpx.post(
        server.url + SPEECH,
        json={"input": LONG_TEXT, "response_format": "wav", "stream": False},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=120,
    )
    by_header = httpx.post(
        server.url + SPEECH,
        json={"input": "Quixotic pelicans again.", "response_format": "mp3"},
        headers={"X-API-Key": API_KEY},
        timeout=120,
    )
    refused = httpx.post(
        server.url + SPEECH,
        json={"input": LONG_TEXT},
        headers={"Authorization": f"Bearer {WRONG_KEY}"},
        timeout=30,
    )
    assert (authorized.status_code, by_header.status_code, refused.status_code) == (200, 200, 401)

    text = scrape(server)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    # The requests were recorded, so their absence below means something.
    assert samples[("voxserve_requests_total", (("route", SPEECH), ("status", "200")))] >= 2
    assert samples[("voxserve_errors_total", (("status", "401"),))] >= 1
    assert samples[("voxserve_characters_total", (("voice", VOICE),))] > len(LONG_TEXT) * 0.9
    lowered = text.lower()
    for secret in (LONG_TEXT, API_KEY, WRONG_KEY, "quixotic", "pelican", "marmalade"):
        assert secret.lower() not in lowered, secret
