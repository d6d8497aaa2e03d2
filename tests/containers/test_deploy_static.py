"""Static checks of the deployment files: no engine, no cluster, seconds.

hadolint on the Dockerfiles, yamllint on the YAML, ``docker compose config`` with the real
Compose v2, ``helm lint`` and ``helm template`` through the Helm SDK, and
``kubernetes-validate --strict`` on what the chart renders, plus the properties the
deployment promises (what is published, what is internal, how pods are locked down).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine import NOT_ROOT, ROOT, VENV_BIN, docker_cli, docker_config_dir, run

from voxserve.settings import Settings

pytestmark = pytest.mark.containers

CHART = ROOT / "deploy" / "helm" / "voxserve"
RELEASE = "tts"

#: Value sets the chart must render validly: defaults, every option on, every option off.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "everything": {
        "redis": {"enabled": True},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "ingress": {
            "enabled": True,
            "hosts": [{"host": "tts.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
            "tls": [{"secretName": "tts-tls", "hosts": ["tts.example.com"]}],
        },
        "autoscaling": {"queueDepth": {"enabled": True}},
        "objectStore": {"enabled": True},
        "voices": {"existingClaim": "voxserve-voices"},
        "apiKeys": {"keys": ["key-one", "key-two"]},
        "imagePullSecrets": [{"name": "regcred"}],
        "wyoming": {
            "enabled": True,
            "clients": [{"podSelector": {"matchLabels": {"app": "home-assistant"}}}],
        },
    },
    "minimal": {
        "autoscaling": {"enabled": False},
        "podDisruptionBudget": {"enabled": False},
        "networkPolicy": {"enabled": False},
        "apiKeys": {"enabled": False},
        "serviceAccount": {"create": False},
        "preStopSleepSeconds": 0,
        "redis": {"url": "rediss://cache.internal:6380/1", "passwordSecret": "redis-auth"},
        "jobs": {"redisUrl": "rediss://jobs.internal:6380/0"},
        "storage": {"bucket": "tts-results", "existingSecret": "bucket-keys"},
    },
}


def render(values: dict[str, Any]) -> dict[str, str]:
    """The chart's templates rendered offline, as helm template would: {path: manifest}."""
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        rendered: dict[str, str] = chart.render(values=values, name=RELEASE, namespace="speech")
    return {path: text for path, text in rendered.items() if path.endswith(".yaml")}


def objects(values: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Rendered Kubernetes objects by (kind, name)."""
    found = {}
    for text in render(values).values():
        for doc in yaml.safe_load_all(text):
            if doc:
                found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def compose_model(tmp_path: Path) -> dict[str, Any]:
    """compose.yaml as Compose itself resolves it (defaults filled in, paths absolute)."""
    try:
        docker = docker_cli()
    except FileNotFoundError:
        if NOT_ROOT:  # scripts/system-deps.sh installs docker.io only as root
            pytest.skip(f"no docker CLI; {NOT_ROOT}")
        raise
    env = {"DOCKER_CONFIG": str(docker_config_dir(tmp_path / "docker")), "PATH": str(VENV_BIN)}
    out = run([docker, "compose", "config", "--format", "json"], env=env).stdout
    model: dict[str, Any] = json.loads(out)
    return model


# -- images -------------------------------------------------------------------------------
@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/docker/standins.Dockerfile"])
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    done = run([VENV_BIN / "hadolint", "--no-color", dockerfile], check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_dockerfile_declares_what_the_runtime_contract_needs() -> None:
    """Base image argument, extras argument, non-root numeric user, ports, health, signal."""
    text = (ROOT / "Dockerfile").read_text()
    runtime = text.split("AS runtime", 1)[1]
    assert "\nARG BASE_IMAGE=python:3.11-slim\n" in text
    assert 'ARG EXTRAS=""' in text
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert re.search(r"^EXPOSE 5002 8000$", runtime, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM$", runtime, re.M)
    health = re.search(r"^HEALTHCHECK .*\n.*$", runtime, re.M)
    assert health is not None
    assert "/readyz" in health.group(0)
    assert "curl" not in health.group(0)
    # Nothing in the runtime stage compiles or fetches Python packages.
    assert not re.search(r"build-essential|gcc|pip install", runtime)


# -- YAML and compose ---------------------------------------------------------------------
def test_deployment_yaml_passes_yamllint() -> None:
    files = ["compose.yaml", "deploy/helm/voxserve/Chart.yaml", "deploy/helm/voxserve/values.yaml"]
    config = ROOT / "tests/containers/yamllint.yaml"
    done = run([VENV_BIN / "yamllint", "-s", "-f", "parsable", "-c", config, *files], check=False)
    assert (done.returncode, done.stdout) == (0, "")


def test_compose_config_is_valid(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(docker_config_dir(tmp_path / "docker")), "PATH": str(VENV_BIN)}
    done = run([docker_cli(), "compose", "config", "-q"], env=env, check=False)
    assert (done.returncode, done.stderr) == (0, "")


def test_compose_publishes_only_nginx_and_grafana(tmp_path: Path) -> None:
    services = compose_model(tmp_path)["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"nginx", "grafana"}
    assert [p["target"] for p in services["nginx"]["ports"]] == [80]
    assert all("expose" not in service for service in services.values())


def test_compose_keeps_backends_on_the_internal_network(tmp_path: Path) -> None:
    model = compose_model(tmp_path)
    networks = {name: net.get("internal", False) for name, net in model["networks"].items()}
    assert networks == {"internal": True, "public": False}
    attached = {name: set(service["networks"]) for name, service in model["services"].items()}
    assert attached == {
        "voxserve": {"internal"},
        "redis": {"internal"},
        "jobqueue": {"internal"},
        "objectstore": {"internal"},
        "prometheus": {"internal"},
        "nginx": {"public", "internal"},
        "grafana": {"public", "internal"},
    }


def test_compose_voxserve_service_is_replicated_limited_and_keyed(tmp_path: Path) -> None:
    voxserve = compose_model(tmp_path)["services"]["voxserve"]
    assert voxserve["deploy"]["replicas"] == 4
    limits = voxserve["deploy"]["resources"]["limits"]
    assert (float(limits["cpus"]), int(limits["memory"])) == (1.0, 2**30)
    assert voxserve["environment"]["MODEL_PATH"] == "/models"
    assert voxserve["environment"]["VOXSERVE_CACHE"] == "tiered"
    assert voxserve["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert [s["source"] for s in voxserve["secrets"]] == [
        "tts_api_key", "storage_access_key", "storage_secret_key",
    ]  # fmt: skip
    assert [v["target"] for v in voxserve["volumes"]] == ["/models"]
    assert (voxserve["read_only"], voxserve["cap_drop"]) == (True, ["ALL"])
    assert "/readyz" in " ".join(voxserve["healthcheck"]["test"])
    # Longer than voxserve's 30 s drain, so in-flight requests finish before SIGKILL.
    assert voxserve["stop_grace_period"] == "40s"


def test_compose_jobs_use_the_stacks_own_queue_and_object_store(tmp_path: Path) -> None:
    """Jobs over every replica: their Redis never evicts (unlike the cache's) and their
    bucket is the internal object store, reached with the secret key pair."""
    services = compose_model(tmp_path)["services"]
    env = services["voxserve"]["environment"]
    assert env["VOXSERVE_JOBS_REDIS_URL"] == "redis://jobqueue:6379/0"
    assert env["VOXSERVE_STORAGE_ENDPOINT"] == "http://objectstore:9000"
    assert (env["VOXSERVE_STORAGE_BUCKET"], env["VOXSERVE_STORAGE_PATH_STYLE"]) == (
        "voxserve", "true",
    )  # fmt: skip
    assert env["VOXSERVE_STORAGE_ACCESS_KEY_FILE"] == "/run/secrets/storage_access_key"
    assert env["VOXSERVE_STORAGE_SECRET_KEY_FILE"] == "/run/secrets/storage_secret_key"
    queue = services["jobqueue"]["command"]
    assert queue[queue.index("--maxmemory-policy") + 1] == "noeviction"
    assert "allkeys-lru" in services["redis"]["command"]
    store = services["objectstore"]
    script = " ".join(store["command"])
    assert "rclone serve s3 /data --addr :9000" in script
    assert "/run/secrets/storage_secret_key" in script
    assert [s["source"] for s in store["secrets"]] == ["storage_access_key", "storage_secret_key"]
    assert [v["target"] for v in store["volumes"]] == ["/data"]
    assert (store["read_only"], store["cap_drop"]) == (True, ["ALL"])


def test_compose_serves_wyoming_on_the_internal_network_only(tmp_path: Path) -> None:
    """Wyoming has no API keys: the replicas listen for it on every address of their
    container, which only the internal network reaches (nothing publishes 10200)."""
    voxserve = compose_model(tmp_path)["services"]["voxserve"]
    environment = voxserve["environment"]
    assert (environment["VOXSERVE_WYOMING"], environment["VOXSERVE_WYOMING_HOST"]) == (
        "true", "0.0.0.0",
    )  # fmt: skip
    assert "VOXSERVE_WYOMING_PORT" not in environment  # 10200, as Home Assistant expects
    assert voxserve["networks"] == {"internal": None}
    assert "ports" not in voxserve


def test_nginx_config_streams_unbuffered_with_keepalive_and_limits() -> None:
    conf = (ROOT / "deploy/nginx/nginx.conf").read_text()
    directives = {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^\s*(\w+)\s+([^;{]*);", conf, re.M)
        if not m.group(0).lstrip().startswith("#")
    }
    assert directives["proxy_buffering"] == "off"
    assert directives["proxy_http_version"] == "1.1"
    assert directives["keepalive"] == "32"
    assert directives["client_max_body_size"] == "25m"  # audio uploads; voxserve: 1m for JSON
    assert int(directives["proxy_read_timeout"].rstrip("s")) >= 300
    assert "server voxserve:5002" in conf


def test_compose_voxserve_takes_the_client_address_from_nginx_alone(tmp_path: Path) -> None:
    """voxserve trusts X-Forwarded-For from the private ranges Docker picks the internal
    network's subnet from (only nginx reaches it), and nginx, the edge, sends the client's
    own address, never a list the client wrote."""
    trusted = compose_model(tmp_path)["services"]["voxserve"]["environment"][
        "VOXSERVE_TRUSTED_PROXIES"
    ]
    assert Settings(trusted_proxies=trusted).trusted_proxies == trusted  # valid as it is
    networks = [ipaddress.ip_network(item) for item in trusted.split(",")]
    assert networks
    assert all(net.is_private for net in networks)
    conf = (ROOT / "deploy/nginx/nginx.conf").read_text()
    forwarded = re.findall(r"^\s*proxy_set_header\s+X-Forwarded-For\s+(\S+);", conf, re.M)
    assert forwarded == ["$remote_addr"]


# -- Helm ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_chart_lints_without_warnings(name: str) -> None:
    import helm_python as helm

    report = helm.lint(CHART, VALUE_SETS[name], strict=True, namespace="speech")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert (report["errors"], problems) == ([], [])


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rendered_manifests_pass_kubernetes_validate_strict(name: str, tmp_path: Path) -> None:
    """Every rendered object validates against the Kubernetes schemas; the only one
    without a schema there is the Prometheus Operator's ServiceMonitor (a CRD)."""
    files = []
    for path, text in render(VALUE_SETS[name]).items():
        if text.strip():
            files.append(tmp_path / Path(path).name)
            files[-1].write_text(text)
    expected = [kind for kind, _ in objects(VALUE_SETS[name]) if kind != "ServiceMonitor"]
    done = run([VENV_BIN / "kubernetes-validate", "--strict", *files], check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    unvalidated = [line for line in lines if not line.startswith("INFO") or "passed" not in line]
    assert all("kind ServiceMonitor" in line for line in unvalidated), unvalidated
    assert len([line for line in lines if "passed" in line]) == len(expected)


def test_chart_pod_is_non_root_read_only_and_probed() -> None:
    deployment = objects({})[("Deployment", f"{RELEASE}-voxserve")]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Service links would inject VOXSERVE_PORT=tcp://... and break start-up.
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/run/secrets/tts_api_key"]["readOnly"] is True
    assert {"/var/cache/voxserve", "/tmp"} <= set(mounts)
    # Graceful drain: preStop pause + voxserve's 30 s fit in the grace period.
    assert pod["terminationGracePeriodSeconds"] >= 30 + 5
    assert "replicas" not in deployment["spec"]  # the HPA owns the count


def test_chart_api_keys_become_a_secret_file() -> None:
    found = objects(VALUE_SETS["everything"])
    secret = found[("Secret", f"{RELEASE}-voxserve-api-keys")]
    assert base64.b64decode(secret["data"]["tts_api_key"]).decode() == "key-one\nkey-two"
    pod = found[("Deployment", f"{RELEASE}-voxserve")]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "api-keys")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    config = found[("ConfigMap", f"{RELEASE}-voxserve")]["data"]
    assert config["VOXSERVE_API_KEY_FILE"] == "/run/secrets/tts_api_key"
    assert config["VOXSERVE_HOST"] == "0.0.0.0"


def test_chart_trusts_forwarded_for_only_behind_its_ingress_or_as_told() -> None:
    def trusted(values: dict[str, Any]) -> str | None:
        config: dict[str, str] = objects(values)[("ConfigMap", f"{RELEASE}-voxserve")]["data"]
        return config.get("VOXSERVE_TRUSTED_PROXIES")

    ingress = VALUE_SETS["everything"]["ingress"]
    assert trusted({}) is None  # reached how the chart cannot know: trust no one
    assert trusted({"ingress": ingress}) == "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    assert trusted({"ingress": ingress, "trustedProxies": "10.42.0.0/16"}) == "10.42.0.0/16"
    assert trusted({"trustedProxies": "10.42.0.0/16"}) == "10.42.0.0/16"
    # Set in config instead: that value, once (no duplicate key in the ConfigMap).
    own = {"ingress": ingress, "config": {"VOXSERVE_TRUSTED_PROXIES": "10.1.0.0/16"}}
    assert trusted(own) == "10.1.0.0/16"
    assert render(own)["voxserve/templates/configmap.yaml"].count("VOXSERVE_TRUSTED_PROXIES") == 1


def test_chart_generates_an_api_key_when_none_is_given() -> None:
    secret = objects({})[("Secret", f"{RELEASE}-voxserve-api-keys")]
    key = base64.b64decode(secret["data"]["tts_api_key"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{40}", key)


def test_chart_network_policy_admits_ingress_to_api_and_prometheus_to_metrics() -> None:
    found = objects({})
    policy = found[("NetworkPolicy", f"{RELEASE}-voxserve")]["spec"]
    container = found[("Deployment", f"{RELEASE}-voxserve")]["spec"]["template"]["spec"][
        "containers"
    ][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    rules = {
        ports[rule["ports"][0]["port"]]: rule["from"][0]["podSelector"]["matchLabels"]
        for rule in policy["ingress"]
    }
    assert rules == {
        5002: {"app.kubernetes.io/name": "ingress-nginx"},
        8000: {"app.kubernetes.io/name": "prometheus"},
    }
    assert policy["policyTypes"] == ["Ingress"]
    assert all(len(rule["ports"]) == 1 for rule in policy["ingress"])


def test_chart_serves_wyoming_only_when_asked_on_a_cluster_ip_to_its_clients() -> None:
    """Off by default (VOXSERVE_WYOMING=false). On: a ClusterIP Service of its own (the API
    Service's type may be changed, the Ingress never routes it), and the NetworkPolicy
    admits wyoming.clients to that port and nobody else (no clients: no rule, no one)."""
    off = objects({})
    assert off[("ConfigMap", f"{RELEASE}-voxserve")]["data"]["VOXSERVE_WYOMING"] == "false"
    assert ("Service", f"{RELEASE}-voxserve-wyoming") not in off

    on = objects(VALUE_SETS["everything"])
    config = on[("ConfigMap", f"{RELEASE}-voxserve")]["data"]
    assert (config["VOXSERVE_WYOMING_HOST"], config["VOXSERVE_WYOMING_PORT"]) == (
        "0.0.0.0", "10200",
    )  # fmt: skip
    assert "VOXSERVE_WYOMING" not in config
    service = on[("Service", f"{RELEASE}-voxserve-wyoming")]["spec"]
    assert service["type"] == "ClusterIP"
    assert service["ports"] == [
        {"name": "wyoming", "port": 10200, "targetPort": "wyoming", "protocol": "TCP"}
    ]
    container = on[("Deployment", f"{RELEASE}-voxserve")]["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert {"name": "wyoming", "containerPort": 10200, "protocol": "TCP"} in container["ports"]
    api = on[("Service", f"{RELEASE}-voxserve")]["spec"]["ports"]
    assert "wyoming" not in {p["name"] for p in api}
    policy = on[("NetworkPolicy", f"{RELEASE}-voxserve")]["spec"]["ingress"]
    wyoming = [rule for rule in policy if rule["ports"][0]["port"] == "wyoming"]
    assert wyoming == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "home-assistant"}}}],
            "ports": [{"port": "wyoming", "protocol": "TCP"}],
        }
    ]
    nobody = objects({"wyoming": {"enabled": True}})[("NetworkPolicy", f"{RELEASE}-voxserve")]
    assert all(rule["ports"][0]["port"] != "wyoming" for rule in nobody["spec"]["ingress"])


def test_chart_autoscales_on_cpu_and_optionally_queue_depth() -> None:
    plain = objects({})[("HorizontalPodAutoscaler", f"{RELEASE}-voxserve")]["spec"]
    assert [m["type"] for m in plain["metrics"]] == ["Resource"]
    assert plain["metrics"][0]["resource"]["name"] == "cpu"
    queued = objects(VALUE_SETS["everything"])[("HorizontalPodAutoscaler", f"{RELEASE}-voxserve")]
    pods_metric = queued["spec"]["metrics"][1]["pods"]
    assert pods_metric["metric"]["name"] == "voxserve_queue_depth"
    pdb = objects({})[("PodDisruptionBudget", f"{RELEASE}-voxserve")]["spec"]
    assert pdb["maxUnavailable"] == 1


def test_chart_servicemonitor_scrapes_the_services_metrics_port() -> None:
    found = objects(VALUE_SETS["everything"])
    monitor = found[("ServiceMonitor", f"{RELEASE}-voxserve")]
    service = found[("Service", f"{RELEASE}-voxserve")]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    port = next(
        p for p in service["spec"]["ports"] if p["name"] == monitor["spec"]["endpoints"][0]["port"]
    )
    assert (port["port"], port["targetPort"]) == (8000, "metrics")


def test_chart_redis_is_the_own_deployment_or_an_existing_url() -> None:
    own = objects(VALUE_SETS["everything"])
    config = own[("ConfigMap", f"{RELEASE}-voxserve")]["data"]
    assert config["REDIS_URL"] == f"redis://{RELEASE}-voxserve-redis:6379/0"
    assert config["VOXSERVE_CACHE"] == "tiered"
    assert ("Service", f"{RELEASE}-voxserve-redis") in own
    assert ("NetworkPolicy", f"{RELEASE}-voxserve-redis") in own

    external = objects(VALUE_SETS["minimal"])
    config = external[("ConfigMap", f"{RELEASE}-voxserve")]["data"]
    assert config["REDIS_URL"] == "rediss://cache.internal:6380/1"
    assert config["VOXSERVE_CACHE_PASSWORD_FILE"] == "/run/secrets/redis/password"
    assert not any(kind == "Deployment" and "redis" in name for kind, name in external)
    assert "replicas" in external[("Deployment", f"{RELEASE}-voxserve")]["spec"]

    alone = objects({})[("ConfigMap", f"{RELEASE}-voxserve")]["data"]
    assert alone["VOXSERVE_CACHE"] == "memory"
    assert "REDIS_URL" not in alone


def test_chart_jobs_reach_its_object_store_or_a_managed_bucket() -> None:
    """objectStore.enabled: the store and the jobs' Redis in the cluster, reached only by
    voxserve's pods, with a generated key pair mounted as files; else the bucket given."""
    found = objects(VALUE_SETS["everything"])
    config = found[("ConfigMap", f"{RELEASE}-voxserve")]["data"]
    assert config["VOXSERVE_STORAGE_ENDPOINT"] == f"http://{RELEASE}-voxserve-objectstore:9000"
    assert config["VOXSERVE_JOBS_REDIS_URL"] == f"redis://{RELEASE}-voxserve-jobs-redis:6379/0"
    assert config["VOXSERVE_STORAGE_SECRET_KEY_FILE"] == "/run/secrets/storage/secret-access-key"
    keys = found[("Secret", f"{RELEASE}-voxserve-objectstore")]["data"]
    assert len(base64.b64decode(keys["secret-access-key"])) == 40
    store = found[("Deployment", f"{RELEASE}-voxserve-objectstore")]["spec"]["template"]["spec"]
    assert "rclone serve s3 /data" in store["containers"][0]["args"][0]
    assert store["securityContext"]["runAsNonRoot"] is True
    queue = found[("Deployment", f"{RELEASE}-voxserve-jobs-redis")]["spec"]["template"]["spec"]
    assert "noeviction" in queue["containers"][0]["args"]
    for component in ("objectstore", "jobs-redis"):
        policy = found[("NetworkPolicy", f"{RELEASE}-voxserve-{component}")]["spec"]
        peers = policy["ingress"][0]["from"]
        assert peers == [{"podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "voxserve", "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": "api",
        }}}]  # fmt: skip

    managed = objects(VALUE_SETS["minimal"])
    config = managed[("ConfigMap", f"{RELEASE}-voxserve")]["data"]
    assert config["VOXSERVE_STORAGE_BUCKET"] == "tts-results"
    assert "VOXSERVE_STORAGE_ENDPOINT" not in config  # AWS S3 itself
    assert config["VOXSERVE_JOBS_REDIS_URL"] == "rediss://jobs.internal:6380/0"
    pod = managed[("Deployment", f"{RELEASE}-voxserve")]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "storage-keys")
    assert volume["secret"]["secretName"] == "bucket-keys"
    assert not any(kind == "Deployment" and "objectstore" in name for kind, name in managed)
    assert (
        "VOXSERVE_STORAGE_BUCKET" not in objects({})[("ConfigMap", f"{RELEASE}-voxserve")]["data"]
    )
