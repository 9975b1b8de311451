"""deploy/'s manifests against the schemas the cluster would apply (kubernetes-validate for core kinds,
KServe's CRD schemas for KServe's), and against what ovms_rs needs from them."""

from __future__ import annotations

import copy
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from deploy_support import NON_ROOT_UID, all_manifests, manifest
from helpers import DEMO, DEMO_MODEL_PATH, ServerProcess, free_port, status_request
from kserve_schema import KSERVE_SCHEMAS, kserve_validator
from ovms_rs._proto.tensorflow_serving.apis import get_model_status_pb2
from ovms_rs.serve import SHUTDOWN_GRACE_SECONDS

# The Kubernetes release whose schemas the core kinds are checked against: every field used here
# (startupProbe, appProtocol, seccompProfile, ...) is generally available there and later.
KUBERNETES_VERSION = "1.30"


def validate(document: dict[str, Any]) -> None:
    """Raises when the document does not match its kind's schema (unknown fields included)."""
    key = (document["apiVersion"], document["kind"])
    if key in KSERVE_SCHEMAS:
        kserve_validator(*key).validate(document)
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", all_manifests())
def test_manifest_matches_its_schema(path: str) -> None:
    validate(manifest(path))


def test_every_kind_has_a_manifest() -> None:
    kinds = sorted(manifest(p)["kind"] for p in all_manifests())
    assert kinds == ["Deployment", "InferenceService", "Service", "ServingRuntime"]


@pytest.mark.parametrize(
    ("path", "mistake"),
    [
        ("kubernetes/deployment.yaml", ("spec", "template", "spec", "terminationGracePeriod")),
        ("kubernetes/service.yaml", ("spec", "ports", 0, "targetPorts")),
        ("kserve/servingruntime.yaml", ("spec", "containers", 0, "readinesProbe")),
        ("kserve/inferenceservice.yaml", ("spec", "predictor", "model", "runtim")),
    ],
)
def test_a_misspelt_field_is_rejected(path: str, mistake: tuple[str | int, ...]) -> None:
    """The validation is strict: the same manifest with one unknown field fails."""
    document = copy.deepcopy(manifest(path))
    node: Any = document
    for key in mistake[:-1]:
        node = node[key]
    node[mistake[-1]] = 1
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate(document)


def only_container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec["containers"]
    assert isinstance(container, dict)
    return container


def probe_paths(container: dict[str, Any]) -> dict[str, tuple[str, int | str]]:
    return {
        probe: (container[probe]["httpGet"]["path"], container[probe]["httpGet"]["port"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }


def test_deployment_probes_metrics_user_and_grace() -> None:
    pod = manifest("kubernetes/deployment.yaml")["spec"]["template"]
    container = only_container(pod["spec"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 9000, "rest": 8080}
    assert {"--port=9000", "--rest_port=8080"} <= set(container["args"])
    assert probe_paths(container) == {
        "startupProbe": ("/v2/health/ready", "rest"),
        "readinessProbe": ("/v2/health/ready", "rest"),
        "livenessProbe": ("/v2/health/live", "rest"),
    }
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/path": "/metrics",
        "prometheus.io/port": "8080",
    }
    assert "--metrics_enable" in container["args"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == NON_ROOT_UID
    assert pod["spec"]["terminationGracePeriodSeconds"] > SHUTDOWN_GRACE_SECONDS
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()


def test_service_selects_the_deployment_pods() -> None:
    service = manifest("kubernetes/service.yaml")["spec"]
    pod_labels = manifest("kubernetes/deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= pod_labels.items()
    assert {p["port"]: p["targetPort"] for p in service["ports"]} == {9000: "grpc", 8080: "rest"}


def test_servingruntime_is_ovms_kserve_runtime() -> None:
    spec = manifest("kserve/servingruntime.yaml")["spec"]
    container = only_container(spec)
    assert container["name"] == "kserve-container"
    # OVMS's KServe runtime arguments, so InferenceServices written for it carry over.
    assert {
        "--model_name={{.Name}}",
        "--model_path=/mnt/models",
        "--port=9000",
        "--rest_port=8080",
    } <= set(container["args"])
    formats = {f["name"] for f in spec["supportedModelFormats"]}
    assert {"openvino", "onnx", "tensorflow"} <= formats
    assert set(spec["protocolVersions"]) == {"v1", "grpc-v1"}
    assert probe_paths(container) == {
        "startupProbe": ("/v2/health/ready", 8080),
        "readinessProbe": ("/v2/health/ready", 8080),
        "livenessProbe": ("/v2/health/live", 8080),
    }
    assert spec["annotations"]["prometheus.kserve.io/port"] == "8080"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["runAsUser"] == NON_ROOT_UID


def test_inferenceservice_uses_the_runtime() -> None:
    runtime = manifest("kserve/servingruntime.yaml")
    predictor = manifest("kserve/inferenceservice.yaml")["spec"]["predictor"]
    assert predictor["model"]["runtime"] == runtime["metadata"]["name"]
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert predictor["model"]["modelFormat"]["name"] in formats
    assert predictor["terminationGracePeriodSeconds"] > SHUTDOWN_GRACE_SECONDS


def local_args(container_args: list[str], rest_port: int) -> list[str]:
    """A container's `serve` arguments for a run here: 127.0.0.1 and free ports (ServerProcess sets the
    gRPC one), and the demo model where KServe would mount the model."""
    assert container_args[0] == "serve"
    args = []
    for arg in container_args[1:]:
        if arg.startswith("--port="):
            continue
        if arg.startswith("--rest_port="):
            arg = f"--rest_port={rest_port}"
        args.append(arg.replace("{{.Name}}", DEMO).replace("/mnt/models", str(DEMO_MODEL_PATH)))
    return [*args, "--rest_bind_address=127.0.0.1"]


def http_status(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


POD_SPECS = {
    "kubernetes/deployment.yaml": ("spec", "template", "spec"),
    "kserve/servingruntime.yaml": ("spec",),
}


@pytest.mark.parametrize("path", sorted(POD_SPECS))
def test_container_args_serve_the_model_and_pass_the_probes(path: str, tmp_path: Path) -> None:
    """ovms_rs accepts the manifest's arguments, serves the model with them, and answers each of the
    manifest's probes with 200 on the REST port."""
    pod_spec: Any = manifest(path)
    for key in POD_SPECS[path]:
        pod_spec = pod_spec[key]
    container = only_container(pod_spec)
    rest_port = free_port()
    args = local_args(container["args"], rest_port)
    with ServerProcess(*args, log_path=tmp_path / "server.log") as server:
        reply = server.model_stub().GetModelStatus(status_request(DEMO), timeout=30)
        (status,) = reply.model_version_status
        assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        for probe, (probe_path, _port) in probe_paths(container).items():
            url = f"http://127.0.0.1:{rest_port}{probe_path}"
            deadline = time.monotonic() + 30  # readiness follows the models' AVAILABLE state
            while (code := http_status(url)) != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert code == 200, (probe, url, server.log())
