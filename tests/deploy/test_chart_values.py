"""Wrong values fail `helm template`: through values.schema.json, or a template check for
what a schema cannot say; right ones pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import Helm

SCHEMA_ERROR = "don't meet the specifications of the schema"


def cpu_group(**overrides: Any) -> dict[str, Any]:
    group: dict[str, Any] = {
        "name": "cpu",
        "replicas": 1,
        "minReplicas": 0,
        "maxReplicas": 2,
        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
    }
    group.update(overrides)
    return group


def render(helm: Helm, tmp_path: Path, values: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    proc = helm.template_raw(path)
    return proc.returncode, proc.stderr


BAD_BY_SCHEMA: dict[str, tuple[dict[str, Any], list[str]]] = {
    "string for a number": (
        {"ray": {"workerGroups": [cpu_group(maxReplicas="four")]}},
        ["/ray/workerGroups/0/maxReplicas", "want integer"],
    ),
    "string for the service replicas": (
        {"service": {"replicas": "2"}},
        ["/service/replicas", "want integer"],
    ),
    "gpu group without a gpu count": (
        {"ray": {"workerGroups": [cpu_group(name="gpu", type="gpu")]}},
        ["/ray/workerGroups/0", "missing property 'gpus'"],
    ),
    "gpu group with zero gpus": (
        {"ray": {"workerGroups": [cpu_group(name="gpu", type="gpu", gpus=0)]}},
        ["/ray/workerGroups/0/gpus", "minimum"],
    ),
    "cpu group asking for gpus": (
        {"ray": {"workerGroups": [cpu_group(gpus=2)]}},
        ["/ray/workerGroups/0/gpus"],
    ),
    "unknown key under ray": (
        {"ray": {"workerGroupz": []}},
        ["/ray", "additional properties 'workerGroupz' not allowed"],
    ),
    "unknown key in a worker group": (
        {"ray": {"workerGroups": [cpu_group(replica=3)]}},
        ["/ray/workerGroups/0", "'replica' not allowed"],
    ),
    "worker group without maxReplicas": (
        {"ray": {"workerGroups": [{k: v for k, v in cpu_group().items() if k != "maxReplicas"}]}},
        ["missing property 'maxReplicas'"],
    ),
    "no worker group": ({"ray": {"workerGroups": []}}, ["/ray/workerGroups"]),
    "bad group name": (
        {"ray": {"workerGroups": [cpu_group(name="GPU_Workers")]}},
        ["/ray/workerGroups/0/name"],
    ),
    "number-like rayStartParams": (
        {"ray": {"head": {"rayStartParams": {"num-cpus": 0}}}},
        ["/ray/head/rayStartParams/num-cpus", "want string"],
    ),
    "fractional cpu as a float": (
        {"service": {"resources": {"limits": {"cpu": 0.5}}}},
        ["/service/resources/limits/cpu"],
    ),
    "database password that breaks the URL": (
        {"database": {"postgresql": {"password": "p@ss:word"}}},
        ["/database/postgresql/password"],
    ),
    "unknown upscaling mode": (
        {"ray": {"autoscaling": {"upscalingMode": "Fast"}}},
        ["/ray/autoscaling/upscalingMode"],
    ),
    "unknown top-level key": ({"servcie": {}}, ["additional properties 'servcie'"]),
}


@pytest.mark.parametrize("name", list(BAD_BY_SCHEMA))
def test_schema_refuses(helm: Helm, tmp_path: Path, name: str) -> None:
    values, fragments = BAD_BY_SCHEMA[name]
    code, stderr = render(helm, tmp_path, values)
    assert code != 0, f"{name}: helm template accepted it"
    assert SCHEMA_ERROR in stderr, stderr
    for fragment in fragments:
        assert fragment in stderr, f"{name}: {fragment!r} not in:\n{stderr}"


BAD_BY_TEMPLATE: dict[str, tuple[dict[str, Any], str]] = {
    "replicas above maxReplicas": (
        {"ray": {"workerGroups": [cpu_group(replicas=5, maxReplicas=2)]}},
        "need minReplicas <= replicas <= maxReplicas",
    ),
    "replicas below minReplicas": (
        {"ray": {"workerGroups": [cpu_group(replicas=0, minReplicas=1)]}},
        "need minReplicas <= replicas <= maxReplicas",
    ),
    "two groups of one name": (
        {"ray": {"workerGroups": [cpu_group(), cpu_group()]}},
        'the name "cpu" is used twice',
    ),
    "external database without a URL": (
        {"database": {"postgresql": {"enabled": False}}},
        "set database.external.existingSecret",
    ),
    "both databases": (
        {"database": {"external": {"url": "postgresql+psycopg://u:p@db:5432/hpo"}}},
        "set database.postgresql.enabled=false",
    ),
    "no shared storage": (
        {"ray": {"storage": {"persistentVolumeClaim": {"create": False}}}},
        "every Ray node needs the same HPO_STORAGE_PATH",
    ),
}


@pytest.mark.parametrize("name", list(BAD_BY_TEMPLATE))
def test_template_refuses(helm: Helm, tmp_path: Path, name: str) -> None:
    values, message = BAD_BY_TEMPLATE[name]
    code, stderr = render(helm, tmp_path, values)
    assert code != 0, f"{name}: helm template accepted it"
    assert message in stderr, stderr


def test_good_variations_pass(helm: Helm, tmp_path: Path) -> None:
    values = {
        "service": {"extraConfig": {"HPO_JOB_POLL_INTERVAL_S": 5}, "publicUrl": "https://h.io"},
        "ray": {
            "workerGroups": [
                cpu_group(type="cpu", gpus=0, rayStartParams={"num-cpus": "4"}),
                cpu_group(name="a100", type="gpu", gpus=8, minReplicas=0, replicas=0),
            ],
            "head": {"rayStartParams": {}},
        },
        "database": {"postgresql": {"password": "Only-URL.safe_chars~1"}},
    }
    code, stderr = render(helm, tmp_path, values)
    assert code == 0, stderr
