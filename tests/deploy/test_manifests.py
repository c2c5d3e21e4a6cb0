"""Kubernetes manifests under deploy/k8s, validated offline: `kubectl kustomize` renders each
kustomization, and every object passes kubernetes-validate's strict schema check (unknown fields
refused). The KServe InferenceService is a custom resource, which kubernetes-validate does not
know: it is checked against the kserve SDK's own models (tests/kserve_sdk), which refuse unknown
fields and wrong types down to the core objects it embeds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests import kserve_sdk

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KUBERNETES = "1.33.0"
KUSTOMIZATIONS = ["base", "overlays/production", "overlays/kserve"]


def render(kustomization: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl (with its built-in kustomize) is needed to render deploy/k8s")
    rendered = subprocess.run([kubectl, "kustomize", str(K8S / kustomization)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def by_kind(objects: list[dict]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for obj in objects:
        found.setdefault(obj["kind"], []).append(obj)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_rendered_object_passes_strict_schema_validation(kustomization):
    import kubernetes_validate

    objects = render(kustomization)
    assert objects
    custom = [obj for obj in objects if obj["kind"] == "InferenceService"]
    for obj in objects:
        if obj not in custom:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    if custom:
        code, problems = kserve_sdk.run("validate_inference_service.py", custom)
        assert code == 0, problems


@pytest.mark.slow
def test_the_kserve_check_refuses_unknown_fields_and_wrong_types():
    (service,) = by_kind(render("overlays/kserve"))["InferenceService"]
    predictor = service["spec"]["predictor"]
    container = {**predictor["containers"][0], "imagez": "x", "ports": [{"containerPort": "8080"}]}
    broken = {
        **service,
        "spec": {"predictr": {}, "predictor": {**predictor, "minReplica": 1, "scaleTarget": "8", "containers": [container]}},
    }
    code, problems = kserve_sdk.run("validate_inference_service.py", [broken])
    assert code == 1
    for expected in (
        "spec.predictr: unknown field of V1beta1InferenceServiceSpec",
        "spec.predictor.minReplica: unknown field of V1beta1PredictorSpec",
        "spec.predictor.scaleTarget: expected int",
        "containers[0].imagez: Extra inputs are not permitted",
        "containers[0].ports.0.containerPort: Input should be a valid integer",
    ):
        assert expected in problems, problems


def test_strict_validation_refuses_an_unknown_field():
    import kubernetes_validate

    service = by_kind(render("base"))["Service"][0]
    broken = {**service, "spec": {**service["spec"], "portz": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_serving_deployment_rules():
    kinds = by_kind(render("overlays/production"))
    (deployment,) = [d for d in kinds["Deployment"] if d["metadata"]["name"] == "edgecloud-serving"]
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["replicas"] >= 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    env = {item["name"]: item["value"] for item in container["env"]}
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    mms_stop_s = 20  # MmsServer.stop's SIGTERM wait
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + float(env["EDGECLOUD_DRAIN_SECONDS"]) + mms_stop_s
    assert env["EDGECLOUD_JAVA_HEAP"] == "1024" and container["image"].startswith("registry.example.com/")
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["models"]["readOnly"] and mounts["models"]["mountPath"] == "/models"
    # Every replica watches the registry on that volume (the same folder the registry's nginx serves).
    assert env["EDGECLOUD_REGISTRY"] == "/models/registry" and int(env["EDGECLOUD_KEEP_VERSIONS"]) >= 1
    assert "limits" in container["resources"] and "requests" in container["resources"]
    ports = [p["containerPort"] for p in container["ports"]]
    assert ports == [8080]  # the front door only: MMS's management port is not exposed
    (hpa,) = kinds["HorizontalPodAutoscaler"]
    assert {m["type"] for m in hpa["spec"]["metrics"]} == {"Resource", "Pods"}
    assert kinds["PodDisruptionBudget"][0]["spec"]["minAvailable"] == 1


def test_aggregator_deployment_rules():
    kinds = by_kind(render("overlays/production"))
    (deployment,) = [d for d in kinds["Deployment"] if d["metadata"]["name"] == "edgecloud-aggregator"]
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = pod["containers"]
    assert container["command"] == ["/usr/local/bin/edgecloud-aggregate"]
    assert container["image"] == "registry.example.com/edgecloud-serving:0.1.0"  # the serving image, its own entrypoint
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    (database,) = [e for e in container["env"] if e["name"] == "EDGECLOUD_AGGREGATOR_DATABASE"]
    assert database["valueFrom"]["secretKeyRef"] == {"name": "edgecloud-aggregator-db", "key": "url"}
    args = container["args"]
    assert "--registry=/registry" in args and not any(a.startswith("--database") for a in args)
    assert not any(a in ("--cors-origin=*", "*") for a in args)
    drain = float(next(a for a in args if a.startswith("--drain-seconds=")).split("=")[1])
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 30
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["allowPrivilegeEscalation"] is False
    # The registry folder it writes is the one the registry's nginx (and the serving pods) read.
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/registry"]
    assert mount["subPath"] == "registry" and not mount.get("readOnly")
    claim = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    (registry,) = [d for d in kinds["Deployment"] if d["metadata"]["name"] == "edgecloud-registry"]
    registry_pod = registry["spec"]["template"]["spec"]
    (registry_mount,) = [m for m in registry_pod["containers"][0]["volumeMounts"] if m["name"] == "models"]
    assert registry_mount["subPath"] == "registry"
    assert claim[mount["name"]] == next(
        v["persistentVolumeClaim"]["claimName"] for v in registry_pod["volumes"] if v["name"] == registry_mount["name"]
    )
    (pvc,) = kinds["PersistentVolumeClaim"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    (service,) = [s for s in kinds["Service"] if s["metadata"]["name"] == "edgecloud-aggregator"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    (pdb,) = [p for p in kinds["PodDisruptionBudget"] if p["metadata"]["name"] == "edgecloud-aggregator"]
    assert pdb["spec"]["minAvailable"] == 1 and pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_registry_serves_versions_immutable_and_latest_uncached():
    config = (K8S / "base" / "registry-nginx.conf").read_text()
    assert re.search(r"latest\\.json\$ \{\s+add_header Cache-Control \"no-cache\"", config)
    assert re.search(r"\[0-9\]\+/ \{\s+add_header Cache-Control \"public, max-age=31536000, immutable\"", config)


def test_image_requirements_carry_pyprojects_pins():
    pinned = {}
    for line in (REPO / "deploy" / "container" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[name] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = dict(item.split("==") for item in project["dependencies"] + project["optional-dependencies"]["mxnet"] if "==" in item)
    for name, version in pinned.items():
        assert declared.get(name) == version, f"{name}: image {version}, pyproject {declared.get(name)}"


# The first-party packages the image carries (build-image.sh copies them); the aggregator's included.
SERVING_PACKAGES = ("mms_handlers", "registry", "aggregation")
# Distributions the image's third-party imports come from (mxnet is best effort, never in the image).
IMPORT_TO_DISTRIBUTION = {
    "numpy": "numpy",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "orjson": "orjson",
    "prometheus_client": "prometheus-client",
    "model_archiver": "model-archiver",
    "mms": "multi-model-server",
    "jsonschema": "jsonschema",
    "psycopg": "psycopg[binary]",
    "psycopg_pool": "psycopg-pool",
}
OPTIONAL_IMPORTS = {"mxnet"}


def test_image_requirements_cover_every_import_of_the_serving_side():
    import ast
    import sys

    imported: set[str] = set()
    for path in (p for package in SERVING_PACKAGES for p in (REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {*SERVING_PACKAGES, "__future__"} - OPTIONAL_IMPORTS
    unknown = third_party - set(IMPORT_TO_DISTRIBUTION)
    assert not unknown, f"mms_handlers imports {sorted(unknown)}: add them to IMPORT_TO_DISTRIBUTION and the image"
    lines = (REPO / "deploy" / "container" / "requirements.txt").read_text().splitlines()
    pinned = {line.split("==")[0] for line in lines if line and not line.startswith("#")}
    missing = {IMPORT_TO_DISTRIBUTION[name] for name in third_party} - pinned
    assert not missing, f"the image would lack {sorted(missing)} (deploy/container/requirements.txt)"
