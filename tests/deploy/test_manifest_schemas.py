"""Every rendered object validates strictly: built-in kinds against the Kubernetes schema
(kubernetes-validate), RayCluster against the KubeRay CRD, ServiceMonitor structurally."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from tests.deploy.chart import RAYCLUSTER_CRD, Helm, Loader, by_kind

# The chart's kubeVersion floor and the newest schema kubernetes-validate carries.
K8S_VERSIONS = ("1.27", latest_version())
# Kinds no Kubernetes schema covers, checked by the tests below instead.
CUSTOM_KINDS = {"RayCluster", "ServiceMonitor"}


def rendered(helm: Helm, case: Path | None) -> tuple[dict[str, Any], ...]:
    return helm.template(*([case] if case else []))


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_kinds_validate_strictly(helm: Helm, case: Path | None, version: str) -> None:
    errors = []
    for doc in rendered(helm, case):
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors)


def test_only_custom_kinds_lack_a_kubernetes_schema(helm: Helm, case: Path | None) -> None:
    for doc in rendered(helm, case):
        if doc["kind"] in CUSTOM_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused (the API server's strict field
    validation) wherever it lists properties and does not keep unknown fields."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def raycluster_validator() -> jsonschema.protocols.Validator:
    crd = yaml.load(RAYCLUSTER_CRD.read_text(), Loader=Loader)
    (v1,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    schema = _strict(copy.deepcopy(v1["schema"]["openAPIV3Schema"]))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_raycluster_validates_against_the_kuberay_crd(helm: Helm, case: Path | None) -> None:
    if not RAYCLUSTER_CRD.is_file():
        pytest.skip(
            f"KubeRay CRD not found at {RAYCLUSTER_CRD} (set HPO_KUBERAY_CRD_DIR to the folder "
            "holding ray.io_rayclusters.yaml to run this check)"
        )
    clusters = by_kind(rendered(helm, case), "RayCluster")
    assert len(clusters) == 1
    errors = sorted(
        raycluster_validator().iter_errors(clusters[0]), key=lambda e: list(e.absolute_path)
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors
    )


def test_crd_check_catches_a_wrong_raycluster(helm: Helm) -> None:
    """The strict CRD check is not vacuous: a misspelt field and a wrong type fail it."""
    if not RAYCLUSTER_CRD.is_file():
        pytest.skip(f"KubeRay CRD not found at {RAYCLUSTER_CRD}")
    cluster = copy.deepcopy(by_kind(rendered(helm, None), "RayCluster")[0])
    cluster["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    cluster["spec"]["authOptions"]["mode"] = "password"
    messages = [error.message for error in raycluster_validator().iter_errors(cluster)]
    assert any("maxReplica" in message for message in messages), messages
    assert any("password" in message for message in messages), messages


def test_servicemonitor_structure(helm: Helm, case: Path | None) -> None:
    """monitoring.coreos.com/v1 is not in kubernetes-validate: check what Prometheus uses."""
    docs = rendered(helm, case)
    monitors = by_kind(docs, "ServiceMonitor")
    enabled = case is not None and bool(
        (yaml.safe_load(case.read_text()) or {})
        .get("service", {})
        .get("serviceMonitor", {})
        .get("enabled", False)
    )
    if not enabled:  # off by default: then the chart renders none
        assert monitors == []
        return
    (monitor,) = monitors
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    services = [
        svc
        for svc in by_kind(docs, "Service")
        if spec["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    ]
    assert [svc["metadata"]["name"] for svc in services] == [
        next(d for d in docs if d["kind"] == "Deployment")["metadata"]["name"]
    ]
    port_names = {port["name"] for port in services[0]["spec"]["ports"]}
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
        for key in ("interval", "scrapeTimeout"):
            assert isinstance(endpoint[key], str) and endpoint[key][-1] in "smh"
