"""The API's answers to bad input: 422 with the field path, 404, 409, 413; nothing changes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fixtures.service import LiveService

pytestmark = pytest.mark.ray


def good_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "ok",
        "trainable": "branin",
        "search_space": {
            "x1": {"type": "uniform", "low": -5, "high": 10},
            "x2": {"type": "uniform", "low": 0, "high": 15},
        },
        "num_samples": 2,
        "config": {"epochs": 1},
    }
    spec.update(overrides)
    return spec


def locs(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, list) and detail
    for item in detail:
        assert item["msg"], item
    return [".".join(str(part) for part in item["loc"]) for item in detail]


BAD_SPECS = [
    (good_spec(trainable="nope"), "body.trainable", "unknown trainable"),
    (good_spec(metric="accuracy"), "body.metric", "does not report"),
    (
        good_spec(search_space={"x1": {"type": "uniform", "low": 5, "high": 1}}),
        "body.search_space.x1",
        "",
    ),
    (
        good_spec(search_space={"lr": {"type": "loguniform", "low": 0, "high": 1}}),
        "body.search_space.lr",
        "",
    ),
    (good_spec(algorithm={"name": "annealing"}), "body.algorithm.name", ""),
    (good_spec(scheduler={"name": "pbt2"}), "body.scheduler.name", ""),
    (good_spec(algorithm={"name": "bohb"}), "body.scheduler.name", "hyperband"),
    (
        good_spec(
            algorithm={"name": "hyperopt"},
            search_space={"x1": {"type": "grid", "values": [1, 2]}},
        ),
        "body.search_space.x1",
        "",
    ),
    (good_spec(num_samples=0), "body.num_samples", ""),
    (good_spec(resources={"num_workers": 2}), "body.resources.num_workers", "one process"),
    (
        {
            **good_spec(trainable="mlp_digits", search_space=None, metric="val_loss"),
            "resources": {"num_workers": 64, "cpus_per_worker": 1},
        },
        "body.resources",
        "the Ray cluster has",
    ),
    (good_spec(unknown_field=1), "body.unknown_field", ""),
    (good_spec(name=""), "body.name", ""),
]


@pytest.mark.parametrize(("spec", "loc", "words"), BAD_SPECS)
def test_invalid_spec_is_422_with_the_field_path(
    live_service: LiveService, spec: dict[str, Any], loc: str, words: str
) -> None:
    before = httpx.get(f"{live_service.url}/api/v1/studies").json()["total"]
    answer = httpx.post(f"{live_service.url}/api/v1/studies", json=spec, timeout=30)
    found = locs(answer)
    assert any(item.startswith(loc) for item in found), (loc, found)
    if words:
        assert words in json.dumps(answer.json()["detail"])
    after = httpx.get(f"{live_service.url}/api/v1/studies").json()["total"]
    assert after == before, "a rejected request stored a study"


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b"name: [unclosed", "application/yaml", "not valid YAML"),
        (b"{not json", "application/json", "not valid JSON"),
        (b"- a\n- list\n", "application/yaml", "must be a mapping"),
        (b"", "application/json", "empty"),
        (b"\xff\xfe", "application/json", "UTF-8"),
    ],
)
def test_body_that_is_not_a_spec_is_422(
    live_service: LiveService, body: bytes, content_type: str, words: str
) -> None:
    answer = httpx.post(
        f"{live_service.url}/api/v1/studies", content=body, headers={"content-type": content_type}
    )
    assert answer.status_code == 422
    assert words in json.dumps(answer.json()["detail"])


def test_body_too_large_is_413(live_service: LiveService) -> None:
    body = b"name: x\n" + b"#" * 1_100_000
    answer = httpx.post(
        f"{live_service.url}/api/v1/studies",
        content=body,
        headers={"content-type": "application/yaml"},
    )
    assert answer.status_code == 413
    assert "detail" in answer.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/studies/999999"),
        ("POST", "/api/v1/studies/999999/stop"),
        ("DELETE", "/api/v1/studies/999999"),
        ("GET", "/api/v1/studies/999999/trials"),
        ("GET", "/api/v1/studies/999999/trials/abc/results"),
        ("POST", "/api/v1/studies/999999/extend"),
        ("GET", "/api/v1/studies/999999/best"),
        ("GET", "/api/v1/comparisons/999999"),
        ("GET", "/api/v1/comparisons/999999/report"),
        ("GET", "/api/v1/comparisons/999999/chart.png"),
    ],
)
def test_unknown_study_is_404(live_service: LiveService, method: str, path: str) -> None:
    answer = httpx.request(method, f"{live_service.url}{path}", json={"num_samples": 5})
    assert answer.status_code == 404
    assert "999999" in answer.json()["detail"]


def test_bad_query_parameters_are_422(live_service: LiveService) -> None:
    assert httpx.get(f"{live_service.url}/api/v1/studies?status=DONE").status_code == 422
    assert httpx.get(f"{live_service.url}/api/v1/studies?limit=0").status_code == 422
    assert httpx.get(f"{live_service.url}/api/v1/studies/abc").status_code == 422


def test_probes_and_docs(live_service: LiveService) -> None:
    assert httpx.get(f"{live_service.url}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{live_service.url}/readyz").json()
    assert ready["checks"] == {"database": "ok", "ray": "ok"}
    schema = httpx.get(f"{live_service.url}/openapi.json").json()
    assert "StudySpec" in schema["components"]["schemas"]
    assert "/api/v1/studies/{study_id}/trials/{trial_id}/results" in schema["paths"]
    names = [t["name"] for t in httpx.get(f"{live_service.url}/api/v1/trainables").json()]
    assert {"branin", "hartmann6", "mlp_digits", "noop"} <= set(names)


COMPARISON = {
    "name": "cmp",
    "trainable": "transformer_lm",
    "baseline": {"evals": 2},
    "variants": {"bf16": {"precision": "bf16"}},
    "repeats": 3,
}


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        (
            {**COMPARISON, "variants": {"fp8": {"precision": "fp8"}}},
            "body.variants.fp8.precision",
            "one of",
        ),
        ({**COMPARISON, "baseline": {"lr": -1}}, "body.baseline.lr", ""),
        ({**COMPARISON, "repeats": 1}, "body.repeats", ""),
        ({**COMPARISON, "variants": {"x": {}}}, "body.variants.x", "changes nothing"),
        (
            {**COMPARISON, "trainable": "branin", "variants": {"x": {"epochs": 2}}},
            "body.seed_key",
            "no config key",
        ),
        ({**COMPARISON, "trainable": "nope"}, "body.trainable", "unknown trainable"),
    ],
)
def test_invalid_comparison_is_422_with_the_field_path(
    live_service: LiveService, body: dict[str, Any], loc: str, words: str
) -> None:
    before = httpx.get(f"{live_service.url}/api/v1/studies").json()["total"]
    answer = httpx.post(f"{live_service.url}/api/v1/comparisons", json=body, timeout=30)
    found = locs(answer)
    assert any(item.startswith(loc) for item in found), (loc, found)
    assert words in json.dumps(answer.json()["detail"])
    assert httpx.get(f"{live_service.url}/api/v1/studies").json()["total"] == before


def test_extend_errors_name_the_problem(live_service: LiveService) -> None:
    space = {"x1": {"type": "grid", "values": [1, 2]}, "x2": {"type": "choice", "values": [3]}}
    grid = good_spec(name="grid", algorithm={"name": "grid"}, search_space=space, num_samples=1)
    created = httpx.post(f"{live_service.url}/api/v1/studies", json=grid, timeout=30).json()
    url = f"{live_service.url}/api/v1/studies/{created['id']}"
    assert locs(httpx.post(f"{url}/extend", json={})) == ["body"]
    assert locs(httpx.post(f"{url}/extend", json={"num_samples": 0})) == ["body.num_samples"]
    assert locs(httpx.post(f"{url}/extend", json={"num_samples": 5, "x": 1})) == ["body.x"]
    # A grid has run its points: raising num_samples would run them again.
    answer = httpx.post(f"{url}/extend", json={"num_samples": 5})
    assert answer.status_code == 409 and "grid" in answer.json()["detail"]
    # Not a comparison: the comparison routes do not know it.
    answer = httpx.get(f"{live_service.url}/api/v1/comparisons/{created['id']}")
    assert answer.status_code == 404 and "not one" in answer.json()["detail"]
    assert httpx.get(url).json()["budget"] == 2  # nothing changed
