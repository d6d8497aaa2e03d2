"""The monitoring config under deploy/: Prometheus scrape config, rules, Grafana dashboard.

Three layers, cheapest first:

* ``promtool`` (Debian's ``prometheus`` package, ``scripts/system-deps.sh test``) checks
  the config and the rules and runs the rules' unit tests
  (deploy/prometheus/tests/voxserve_test.yml).
* Every metric name in every PromQL expression (dashboard panels, its variable, rules)
  must be one a real voxserve exports: a real app on the real Piper voice serves a few
  requests in-process and its registry is read back. Names only Prometheus makes
  (``up``) are listed explicitly; the GPU names are read from the real collector fed by
  a stand-in for NVML, since this machine has no GPU.
* A real ``prometheus`` server scrapes a real voxserve (tests/live.py) every second with
  the rules loaded: recording rules must produce values from real traffic, every rule
  must evaluate without error, an unreachable replica must raise the replica-down alert,
  and every dashboard query must run and, GPU panels apart, return data.

Both servers run the tiered cache (memory in front of Redis) with Redis on a port where
nothing listens: the memory tier still hits, and every Redis call is a real failure, so
the cache-error metric, its panel and its alert see real data.

A missing promtool or prometheus binary fails these tests with the install hint rather
than skipping them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from live import LiveServer, free_port, terminate
from voxserve.metrics import GpuCollector
from voxserve.server.app import create_app
from voxserve.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules" / "voxserve.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "voxserve_test.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "voxserve.json"

#: Series Prometheus itself creates for every target; voxserve cannot export them.
PROMETHEUS_OWN = {"up"}
SEVERITIES = {"critical", "warning", "info"}
#: Longest wait for Prometheus to scrape, evaluate or alert (scrape and rules run every 1 s,
#: but the first scrape waits for the discovery manager's 5 s update cycle).
WAIT_S = 30.0


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found: install Debian's prometheus package "
            "(scripts/system-deps.sh test, or apt-get install --no-install-recommends prometheus)"
        )
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


# --- PromQL metric names --------------------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and"}
_KEYWORDS |= {"or", "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (a PromQL tokenizer just good enough here).

    Strings, label matchers, ranges and grouping label lists are removed first; what is
    left that is an identifier, not a keyword and not a function call is a metric name.
    """
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    tokens = re.finditer(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {m.group(1) for m in tokens if m.group(1).lower() not in _KEYWORDS}


def test_metric_name_extractor_finds_selectors_and_skips_labels_functions_keywords() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (route, le) (rate(voxserve_request_duration_seconds_bucket"
        '{route!~"/healthz|/readyz", instance=~"$instance"}[$__rate_interval])))'
        " > on (job) group_left vector(1) or up offset 5m and bool foo:bar:baz / 1e3"
    )
    assert metric_names(expr) == {"voxserve_request_duration_seconds_bucket", "up", "foo:bar:baz"}


def load_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_exprs() -> list[str]:
    return [t["expr"] for panel in load_dashboard()["panels"] for t in panel["targets"]]


def variable_exprs() -> list[str]:
    """The series selectors inside the dashboard variables' ``label_values(...)`` queries."""
    exprs = []
    for variable in load_dashboard()["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
        assert match, f"variable {variable['name']} is not a label_values() query"
        exprs.append(match.group(1))
    return exprs


# --- promtool -------------------------------------------------------------------------


def test_prometheus_config_passes_promtool_check_config() -> None:
    result = run_promtool("check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    # rule_files is a glob relative to the config: it must find the rules file.
    assert "rules/voxserve.yml" in result.stdout + result.stderr


def test_rules_pass_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_rule_unit_tests_pass_in_promtool() -> None:
    result = run_promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    """An alert added to the rules without a promtool case for each outcome fails here."""
    alerts = {r["alert"] for r in load_rules() if "alert" in r}
    cases = [
        case
        for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
    ]
    fires = {c["alertname"] for c in cases if c["exp_alerts"]}
    silent = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert alerts - fires == set()
    assert alerts - silent == set()


def test_every_alert_waits_has_a_severity_and_says_what_to_do() -> None:
    for rule in (r for r in load_rules() if "alert" in r):
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert len(rule["annotations"]["description"]) > 80, rule["alert"]


def test_prometheus_config_discovers_replicas_on_the_metrics_port_by_dns() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"voxserve", "prometheus"}
    (dns,) = jobs["voxserve"]["dns_sd_configs"]
    assert (dns["names"], dns["type"], dns["port"]) == (["voxserve"], "A", 8000)
    assert jobs["voxserve"]["scrape_interval"] == "5s"
    assert config["rule_files"] == ["rules/*.yml"]


# --- the dashboard --------------------------------------------------------------------


def test_dashboard_panels_have_unique_ids_datasource_position_and_queries() -> None:
    dashboard = load_dashboard()
    panels = dashboard["panels"]
    assert dashboard["uid"] == "voxserve"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert len({p["id"] for p in panels}) == len(panels)
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        title = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, title
        pos = panel["gridPos"]
        assert min(pos["w"], pos["h"]) > 0, title
        assert pos["x"] + pos["w"] <= 24, title
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                 for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not cells & occupied, f"{title} overlaps another panel"
        occupied |= cells
        assert panel["targets"], title
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus", title
            assert target["expr"].strip(), title
            # The replica picker must filter every query.
            assert 'instance=~"$instance"' in target["expr"], title


def test_dashboard_has_the_panels_operators_need() -> None:
    exprs = " ".join(dashboard_exprs())
    for metric in (
        "voxserve_requests_total",
        "voxserve_request_duration_seconds_bucket",
        "voxserve_time_to_first_audio_seconds_bucket",
        "voxserve_real_time_factor_bucket",
        "voxserve_queue_depth",
        "voxserve_batch_size_bucket",
        "voxserve_queue_wait_seconds_bucket",
        "voxserve_cache_requests_total",
        "voxserve_cache_errors_total",
        "voxserve_errors_total",
        "voxserve_requests_in_flight",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "voxserve_gpu_utilization_ratio",
        "voxserve_gpu_memory_used_bytes",
        "voxserve_voices_loaded",
        "voxserve_ready",
        "voxserve_inference_runs_total",
        "voxserve_stream_gap_seconds_total",
    ):
        assert metric in exprs, metric
    (variable,) = load_dashboard()["templating"]["list"]
    assert variable["name"] == "instance"
    assert variable["includeAll"]
    assert variable["multi"]


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards_directory() -> None:
    sources = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/voxserve.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# --- names against a real voxserve ----------------------------------------------------


class _OneGpu:
    """Just enough of pynvml (its camelCase names) for GpuCollector to report one device."""

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=40)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=2**30, total=2**34)


def unreachable_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


@pytest.fixture(scope="module")
def exported_names() -> set[str]:
    """Sample names a real app exports after serving a miss, a hit, a stream and an error."""
    registry = CollectorRegistry()
    settings = Settings(espeak=False, cache="tiered", cache_url=unreachable_redis())
    with TestClient(create_app(settings, registry=registry)) as client:
        speech = {"input": "Monitoring works.", "voice": "alloy", "response_format": "wav"}
        responses = [
            client.post("/v1/audio/speech", json=body)
            for body in (
                {**speech, "stream": False},
                {**speech, "stream": False},
                {**speech, "input": "Streamed, sentence by sentence.", "stream": True},
                {**speech, "input": ""},
            )
        ]
        assert [r.status_code for r in responses] == [200, 200, 200, 400]
        assert [r.headers.get("x-cache") for r in responses[:3]] == ["miss", "hit", "miss"]
        assert client.get("/readyz").status_code == 200
        text = generate_latest(registry).decode()
    names = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    gpu = {s.name for family in GpuCollector(_OneGpu()).collect() for s in family.samples}
    assert gpu == {
        "voxserve_gpu_utilization_ratio",
        "voxserve_gpu_memory_used_bytes",
        "voxserve_gpu_memory_total_bytes",
    }
    return names | gpu


def test_every_metric_in_the_dashboard_is_exported_by_voxserve(exported_names: set[str]) -> None:
    used = set().union(*map(metric_names, dashboard_exprs() + variable_exprs()))
    assert len(used) >= 15
    assert used - exported_names - PROMETHEUS_OWN == set()


def test_every_metric_in_the_rules_is_exported_or_recorded(exported_names: set[str]) -> None:
    rules = load_rules()
    recorded = {r["record"] for r in rules if "record" in r}
    used = set().union(*(metric_names(r["expr"]) for r in rules))
    assert used - exported_names - PROMETHEUS_OWN - recorded == set()


# --- a real Prometheus scraping a real voxserve ---------------------------------------


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """``probe()``'s first truthy result, polled every 0.25 s for at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


class Prom:
    """A real Prometheus server on 127.0.0.1, its HTTP API and what it scrapes."""

    def __init__(self, url: str, live_target: str, dead_target: str) -> None:
        self.url = url
        self.live = live_target
        self.dead = dead_target

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of ``expr`` now, or None while it has none."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None


def speak(url: str, text: str) -> int:
    body = {"input": text, "voice": "alloy", "response_format": "wav", "stream": False}
    return httpx.post(url + "/v1/audio/speech", json=body, timeout=60).status_code


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    """Prometheus scraping a live voxserve and an unreachable replica, rules loaded.

    Real traffic (misses, hits, a client error) is sent only after the first scrape, so
    counters visibly increase and rate() has something to say.
    """
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    dead_target = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {"VOXSERVE_ESPEAK": "false", "VOXSERVE_CACHE": "tiered", "REDIS_URL": unreachable_redis()}
    with LiveServer(env=env) as server:
        live_target = f"127.0.0.1:{server.metrics_port}"
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "voxserve",
                    "static_configs": [{"targets": [live_target, dead_target]}],
                }
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = (tmp / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            p = Prom(f"http://127.0.0.1:{port}", live_target, dead_target)

            def ready() -> bool:
                if process.poll() is not None:
                    pytest.fail(f"prometheus exited:\n{(tmp / 'prometheus.log').read_text()}")
                try:
                    return httpx.get(p.url + "/-/ready", timeout=1).status_code == 200
                except httpx.TransportError:
                    return False

            wait_for("prometheus to start", ready)
            # Every series the rules read exists before the first scrape...
            assert speak(server.url, "Warming up the cache.") == 200
            assert speak(server.url, "Warming up the cache.") == 200
            assert speak(server.url, "") == 400
            wait_for("the first scrape", lambda: p.value(f'up{{instance="{live_target}"}}') == 1)
            # ... and grows after it.
            texts = ["The first new sentence.", "A second, different one.", "Warming up the cache."]
            for text in texts * 2:
                assert speak(server.url, text) == 200
            assert speak(server.url, "") == 400
            # The 400 went last: once its rate is recorded, all the traffic has been.
            rate_400 = 'voxserve:requests:rate1m{route="/v1/audio/speech",status="400"}'
            wait_for("the request-rate recording rule", lambda: (p.value(rate_400) or 0) > 0)
            yield p
        finally:
            terminate(process, grace=15)
            log.close()


def test_prometheus_scrapes_the_live_replica_and_sees_it_ready(prom: Prom) -> None:
    assert prom.value(f'up{{job="voxserve", instance="{prom.live}"}}') == 1
    assert prom.value(f'voxserve_ready{{instance="{prom.live}"}}') == 1
    assert prom.value(f'voxserve_voices_loaded{{instance="{prom.live}"}}') == 1


def test_recording_rules_turn_real_traffic_into_values(prom: Prom) -> None:
    """Rates, ratios and quantiles recorded from the traffic the fixture sent."""
    assert (prom.value('voxserve:requests:rate1m{route="/v1/audio/speech",status="200"}') or 0) > 0
    hit_ratio = wait_for(
        "the cache hit ratio",
        lambda: prom.value('voxserve:cache_hit:ratio_rate5m{backend="memory+redis"}'),
    )
    assert 0 < hit_ratio < 1  # the fixture sent both hits and misses
    assert (prom.value('voxserve:cache_errors:rate5m{backend="redis"}') or 0) > 0
    assert prom.value("voxserve:requests_5xx:ratio_rate5m") == 0
    assert prom.value("voxserve:requests_overloaded:rate5m") == 0
    p50 = wait_for(
        "p50 latency",
        lambda: prom.value('voxserve:request_duration_seconds:p50_5m{route="/v1/audio/speech"}'),
    )
    p99 = prom.value('voxserve:request_duration_seconds:p99_5m{route="/v1/audio/speech"}')
    assert p99 is not None
    assert 0 < p50 <= p99
    assert (prom.value("voxserve:time_to_first_audio_seconds:p95_5m") or 0) > 0
    assert (prom.value("voxserve:real_time_factor:p50_5m") or 0) > 0
    assert prom.value(f'voxserve:queue_depth:max{{instance="{prom.live}"}}') is not None


def test_every_rule_loads_and_evaluates_without_error(prom: Prom) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = prom.get("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if all(r["health"] != "unknown" for r in rules) else None

    rules = wait_for("every rule's first evaluation", evaluated)
    assert len(rules) == len(load_rules())
    assert [(r["name"], r["health"], r.get("lastError", "")) for r in rules] == [
        (r["name"], "ok", "") for r in rules
    ]


def test_unreachable_replica_and_redis_raise_their_alerts_and_nothing_else(prom: Prom) -> None:
    """Before their ``for:`` passes the alerts are pending; the live replica has none."""
    assert prom.value(f'up{{job="voxserve", instance="{prom.dead}"}}') == 0

    def replica_down() -> list[dict[str, Any]]:
        return [
            a
            for a in prom.get("/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == "VoxserveReplicaDown"
        ]

    (alert,) = wait_for("the replica-down alert", replica_down)
    assert alert["labels"]["instance"] == prom.dead
    assert alert["state"] == "pending"
    assert alert["labels"]["severity"] == "warning"

    def cache_errors() -> list[dict[str, Any]]:
        return [
            a
            for a in prom.get("/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == "VoxserveCacheErrors"
        ]

    (alert,) = wait_for("the cache-errors alert", cache_errors)
    assert alert["labels"]["backend"] == "redis"
    assert alert["state"] == "pending"
    alerts = prom.get("/api/v1/alerts")["alerts"]
    assert [a for a in alerts if a["labels"].get("instance") == prom.live] == []
    assert {a["labels"]["alertname"] for a in alerts} == {
        "VoxserveReplicaDown",
        "VoxserveCacheErrors",
    }


def test_every_dashboard_query_runs_and_all_but_gpu_panels_show_data(prom: Prom) -> None:
    """Grafana's variables replaced as Grafana would; no GPU here, so those are empty."""
    empty = []
    for panel in load_dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
            if not prom.query(expr):  # a syntax error would fail inside query()
                empty.append(panel["title"])
    assert sorted(set(empty)) == ["GPU memory", "GPU utilization"]
    for selector in variable_exprs():
        instances = {s["metric"]["instance"] for s in prom.query(selector)}
        assert instances == {prom.live, prom.dead}
