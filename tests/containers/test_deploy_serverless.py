"""Static checks of the serverless deployments: the chart's KEDA and Knative options and
the Cloud Run example. No engine, no cluster.

kubernetes-validate has no schemas for custom resources, and no PyPI package ships the
CRDs' own OpenAPI schemas (cloudcoil-models-keda/-knative-serving carry pydantic models
generated from them, behind a client library). So the two CRDs are vendored in crds/
(source and tag in each file's header) and the rendered objects are validated against
their ``openAPIV3Schema`` with jsonschema, unknown fields refused as the API server's
strict field validation does. The rest of what the chart renders goes through
``kubernetes-validate --strict`` as in test_deploy_static.py.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from engine import ROOT, VENV_BIN, run
from prometheus_client import CollectorRegistry
from test_deploy_static import CHART, RELEASE, objects, render

from voxserve.metrics import Metrics

pytestmark = pytest.mark.containers

CRDS = Path(__file__).parent / "crds"
CLOUD_RUN = ROOT / "deploy" / "serverless" / "cloudrun.service.yaml"
NAME = f"{RELEASE}-voxserve"

#: Value sets with a serverless option on: plain, and with every option that may combine.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "keda": {"keda": {"enabled": True}},
    "keda-everything": {
        "keda": {
            "enabled": True,
            "wakeQuery": 'sum(rate(nginx_ingress_controller_requests{ingress="tts"}[1m]))',
            "requestRate": {"threshold": "2.5"},
        },
        "serviceMonitor": {"enabled": True},
        "redis": {"enabled": True},
        "wyoming": {"enabled": True},
    },
    "knative": {"knative": {"enabled": True}},
    "knative-objectstore": {"knative": {"enabled": True}, "objectStore": {"enabled": True}},
    "knative-everything": {
        "knative": {"enabled": True, "minScale": 1, "containerConcurrency": 16},
        "voices": {"existingClaim": "voxserve-voices"},
        "redis": {"url": "rediss://cache.internal:6380/1", "passwordSecret": "redis-auth"},
        "storage": {"bucket": "speech", "existingSecret": "bucket-keys"},
        "imagePullSecrets": [{"name": "regcred"}],
        # Each of these renders nothing under Knative.
        "ingress": {"enabled": True, "hosts": [{"host": "tts.example.com", "paths": []}]},
        "serviceMonitor": {"enabled": True},
    },
}

#: (apiVersion, kind) of the custom resources -> the vendored CRD and the version in it.
CUSTOM = {
    ("keda.sh/v1alpha1", "ScaledObject"): ("keda-scaledobject.yaml", "v1alpha1"),
    ("serving.knative.dev/v1", "Service"): ("knative-serving-service.yaml", "v1"),
}

#: The prometheus trigger's metadata keys in KEDA v2.20 (pkg/scalers/prometheus_scaler.go).
PROMETHEUS_REQUIRED = {"serverAddress", "query", "threshold"}
PROMETHEUS_KNOWN = PROMETHEUS_REQUIRED | {
    "queryParameters", "activationThreshold", "namespace", "customHeaders",
    "ignoreNullValues", "unsafeSsl", "awsRegion", "timeout", "identityOwner",
}  # fmt: skip


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever an object lists its
    properties and does not keep unknown fields (what strict field validation refuses)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    filename, version = CUSTOM[(api_version, kind)]
    crd = yaml.safe_load((CRDS / filename).read_text())
    assert crd["spec"]["names"]["kind"] == kind
    assert api_version == f"{crd['spec']['group']}/{version}"
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema: dict[str, Any] = strict(served["schema"]["openAPIV3Schema"])
    return schema


def validate_custom(obj: dict[str, Any]) -> None:
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def is_custom(obj: dict[str, Any]) -> bool:
    return (obj["apiVersion"], obj["kind"]) in CUSTOM


def test_vendored_schemas_refuse_what_they_should() -> None:
    """The strict schemas catch a misspelt field and a wrong type, so a pass means something."""
    good = objects(VALUE_SETS["knative"])[("Service", NAME)]
    validate_custom(good)
    typo = yaml.safe_load(yaml.safe_dump(good))
    typo["spec"]["template"]["spec"]["containers"][0]["startupProbes"] = {}
    with pytest.raises(AssertionError, match="startupProbes"):
        validate_custom(typo)
    scaled = objects(VALUE_SETS["keda"])[("ScaledObject", NAME)]
    validate_custom(scaled)
    wrong = yaml.safe_load(yaml.safe_dump(scaled))
    wrong["spec"]["minReplicaCount"] = "zero"
    with pytest.raises(AssertionError, match="minReplicaCount"):
        validate_custom(wrong)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_serverless_values_lint_without_warnings(name: str) -> None:
    import helm_python as helm

    report = helm.lint(CHART, VALUE_SETS[name], strict=True, namespace="speech")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert (report["errors"], problems) == ([], [])


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_serverless_manifests_validate(name: str, tmp_path: Path) -> None:
    """Custom resources against their CRD's schema, the rest with kubernetes-validate."""
    builtin, custom = [], []
    for text in render(VALUE_SETS[name]).values():
        for doc in yaml.safe_load_all(text):
            # The ServiceMonitor (a CRD too) is test_deploy_static.py's concern.
            if doc and doc["kind"] != "ServiceMonitor":
                (custom if is_custom(doc) else builtin).append(doc)
    assert len(custom) == 1
    for obj in custom:
        validate_custom(obj)
    path = tmp_path / "builtin.yaml"
    path.write_text(yaml.safe_dump_all(builtin))
    done = run([VENV_BIN / "kubernetes-validate", "--strict", path], check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed") == len(builtin), done.stdout


def test_keda_replaces_the_hpa_and_scales_the_deployment_to_zero() -> None:
    found = objects(VALUE_SETS["keda"])
    assert not any(kind == "HorizontalPodAutoscaler" for kind, _ in found)
    deployment = found[("Deployment", NAME)]
    assert "replicas" not in deployment["spec"]  # KEDA owns the count
    spec = found[("ScaledObject", NAME)]["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 10)
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert [t["name"] for t in spec["triggers"]] == ["request-rate", "queue-depth"]
    for trigger in spec["triggers"]:
        assert trigger["type"] == "prometheus"
        assert PROMETHEUS_REQUIRED <= set(trigger["metadata"]) <= PROMETHEUS_KNOWN
        assert float(trigger["metadata"]["threshold"]) > 0
    # The probes are requests too, but no work: a replica they keep alive never goes.
    rate = spec["triggers"][0]["metadata"]["query"]
    assert 'route!~"/healthz|/readyz"' in rate
    assert f'namespace="speech",service="{NAME}"' in rate

    woken = objects(VALUE_SETS["keda-everything"])[("ScaledObject", NAME)]["spec"]["triggers"]
    assert [t["name"] for t in woken] == ["request-rate", "queue-depth", "wake"]
    assert woken[2]["metadata"]["query"].startswith("sum(rate(nginx_ingress_controller")
    assert woken[2]["metadata"]["activationThreshold"] == "0"


def test_keda_queries_name_metrics_voxserve_exports() -> None:
    """The metric and label names in the default queries are ones voxserve's registry has."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.requests.labels("/v1/audio/speech", "200").inc()
    metrics.queue_depth.labels("en_US-joe-medium").set(1)
    samples = {s.name: set(s.labels) for family in registry.collect() for s in family.samples}
    assert "route" in samples["voxserve_requests_total"]
    assert "voxserve_queue_depth" in samples
    triggers = objects(VALUE_SETS["keda"])[("ScaledObject", NAME)]["spec"]["triggers"]
    queries = [t["metadata"]["query"] for t in triggers]
    assert queries[0].startswith("sum(rate(voxserve_requests_total{")
    assert queries[1].startswith("sum(voxserve_queue_depth{")


def test_knative_service_replaces_deployment_service_and_autoscaler() -> None:
    found = objects(VALUE_SETS["knative-everything"])
    kinds = {kind for kind, _ in found}
    assert kinds == {"ConfigMap", "Secret", "ServiceAccount", "Service"}
    service = found[("Service", NAME)]
    assert service["apiVersion"] == "serving.knative.dev/v1"
    template = service["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "1"
    assert annotations["autoscaling.knative.dev/max-scale"] == "10"
    assert annotations["autoscaling.knative.dev/metric"] == "concurrency"
    assert template["spec"]["containerConcurrency"] == 16
    # Knative's defaults refuse a pod securityContext; the container's carries the user.
    assert "securityContext" not in template["spec"]
    (container,) = template["spec"]["containers"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "lifecycle" not in container  # Knative's queue-proxy drains
    # One port, which Knative passes as $PORT; the ConfigMap must not pin another.
    assert container["ports"] == [{"name": "http1", "containerPort": 5002}]
    config = found[("ConfigMap", NAME)]["data"]
    assert "VOXSERVE_PORT" not in config
    assert config["VOXSERVE_WYOMING"] == "false"
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path}
        assert container[probe]["periodSeconds"] == 1
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["api-keys"]["secret"]["defaultMode"] == 0o444  # no fsGroup
    assert volumes["storage-keys"]["secret"]["defaultMode"] == 0o444
    assert volumes["storage-keys"]["secret"]["secretName"] == "bucket-keys"
    assert volumes["voices"]["persistentVolumeClaim"]["claimName"] == "voxserve-voices"

    plain = objects(VALUE_SETS["knative"])
    assert (
        plain[("Service", NAME)]["spec"]["template"]["metadata"]["annotations"][
            "autoscaling.knative.dev/min-scale"
        ]
        == "0"
    )
    assert "VOXSERVE_PORT" in objects({})[("ConfigMap", NAME)]["data"]


def test_knative_pod_mounts_what_the_deployment_pod_mounts() -> None:
    """The Knative Service repeats the Deployment's pod: a volume or setting added to one
    and not the other (a secret file the settings point at) fails here."""
    values = {k: v for k, v in VALUE_SETS["knative-everything"].items() if k != "knative"}
    plain = objects(values)[("Deployment", NAME)]["spec"]["template"]["spec"]
    knative = objects(VALUE_SETS["knative-everything"])[("Service", NAME)]["spec"]["template"]
    (deployed,) = plain["containers"]
    (served,) = knative["spec"]["containers"]
    assert served["volumeMounts"] == deployed["volumeMounts"]
    assert [v["name"] for v in knative["spec"]["volumes"]] == [v["name"] for v in plain["volumes"]]
    for key in ("image", "args", "envFrom", "resources"):
        assert served[key] == deployed[key], key


def test_knative_refuses_wyoming() -> None:
    import helm_python as helm

    with pytest.raises(helm.errors.HelmRenderError, match="one HTTP port"):
        render({"knative": {"enabled": True}, "wyoming": {"enabled": True}})


def test_cloud_run_example_is_a_valid_scale_to_zero_service() -> None:
    """A Knative-shaped Service (Cloud Run's v1 API): listens on $PORT, starts probed on
    /readyz, no instance while idle."""
    (service,) = list(yaml.safe_load_all(CLOUD_RUN.read_text()))
    validate_custom(service)
    template = service["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/minScale"] == "0"
    assert annotations["run.googleapis.com/startup-cpu-boost"] == "true"
    assert template["spec"]["containerConcurrency"] > 0
    (container,) = template["spec"]["containers"]
    assert container["image"] == "${IMAGE}"  # filled in by envsubst (docs/deployment.md)
    assert container["args"] == ["serve"]
    (port,) = container["ports"]
    env = {e["name"]: e for e in container["env"]}
    # The platform's $PORT decides.
    assert "VOXSERVE_PORT" not in env
    assert "PORT" not in env
    assert container["startupProbe"]["httpGet"] == {
        "path": "/readyz",
        "port": port["containerPort"],
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert env["VOXSERVE_API_KEYS"]["valueFrom"]["secretKeyRef"]["key"] == "latest"
    assert env["VOXSERVE_WYOMING"]["value"] == "false"


def test_image_sets_no_api_port_so_port_decides() -> None:
    """The image must leave VOXSERVE_PORT unset, or $PORT (the serverless convention) is
    ignored; its health check follows the same order as voxserve serve."""
    text = (ROOT / "Dockerfile").read_text()
    runtime = text.split("AS runtime", 1)[1]
    assert "VOXSERVE_PORT=" not in runtime
    assert "os.environ.get('VOXSERVE_PORT') or os.environ.get('PORT') or '5002'" in runtime
