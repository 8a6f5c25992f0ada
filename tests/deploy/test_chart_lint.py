"""The chart lints strictly and renders for its defaults and every ci/*.yaml values file."""

from __future__ import annotations

from pathlib import Path

from tests.deploy.chart import CHART_DIR, CI_VALUES, Helm


def test_ci_values_cover_the_required_setups() -> None:
    names = {path.name for path in CI_VALUES}
    assert {
        "cpu-small-values.yaml",
        "gpu-autoscaling-values.yaml",
        "external-db-ingress-values.yaml",
    } <= names


def test_helm_lint_strict(helm: Helm, case: Path | None) -> None:
    args = ["lint", "--strict", str(CHART_DIR)]
    if case is not None:
        args += ["-f", str(case)]
    proc = helm.run(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_helm_template_renders(helm: Helm, case: Path | None) -> None:
    docs = helm.template(*([case] if case else []))
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ConfigMap", "RayCluster", "Pod"} <= kinds
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc


def test_notes_tell_how_to_reach_everything(helm: Helm, case: Path | None) -> None:
    args = ["install", "hpo", str(CHART_DIR), "--dry-run=client", "--namespace", "hpo-test"]
    if case is not None:
        args += ["-f", str(case)]
    proc = helm.run(*args)
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "/api/v1" in notes and "Web page" in notes
    assert "Ray dashboard" in notes
    # How to read both tokens.
    assert "kubectl get secret" in notes and "base64 -d" in notes
    assert "auth_token" in notes
    assert "helm test" in notes
