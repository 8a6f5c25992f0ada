"""Study spec parsing and cross-field validation, without a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from search_spaces import InvalidSpec
from service.spec import parse_spec_document, spec_from_mapping
from service.validation import ClusterCapacity, validate_study

CLUSTER = ClusterCapacity(cpus=4, gpus=0)


def spec(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"name": "s", "trainable": "branin", "config": {"epochs": 3}}
    document.update(overrides)
    return document


def problems(
    document: dict[str, Any], capacity: ClusterCapacity | None = CLUSTER
) -> dict[str, str]:
    with pytest.raises(InvalidSpec) as caught:
        validate_study(spec_from_mapping(document), capacity)
    return {".".join(str(p) for p in loc): msg for loc, msg in caught.value.errors}


def test_defaults_come_from_the_trainable() -> None:
    study = validate_study(spec_from_mapping(spec()), CLUSTER)
    assert (study.metric, study.mode) == ("loss", "min")
    assert set(study.space.parameter_paths()) == {"x1", "x2"}
    assert study.spec.num_samples == 10 and study.trial_budget == 10
    assert study.max_t == 3
    assert study.planned_iterations({"x1": 0.0, "x2": 1.0}) == 3


def test_a_config_value_takes_its_key_out_of_the_default_space() -> None:
    study = validate_study(spec_from_mapping(spec(config={"epochs": 3, "x1": 2.0})), CLUSTER)
    assert study.space.parameter_paths() == ["x2"]
    assert study.fixed_config["x1"] == 2.0


def test_grid_defaults_to_one_pass_and_counts_its_points() -> None:
    grid = {"x1": {"type": "grid", "values": [1, 2, 3]}, "x2": {"type": "choice", "values": [0, 5]}}
    study = validate_study(spec_from_mapping(spec(algorithm="grid", search_space=grid)), CLUSTER)
    assert study.spec.num_samples == 1
    assert study.trial_budget == 6


@pytest.mark.parametrize(
    ("overrides", "where", "words"),
    [
        ({"trainable": "nope"}, "trainable", "unknown trainable"),
        ({"metric": "accuracy"}, "metric", "does not report"),
        ({"metric": "loss", "mode": None, "trainable": "noop"}, "", ""),
        ({"algorithm": "bohb"}, "scheduler.name", "hyperband"),
        ({"scheduler": {"name": "asha", "grace_period": 9}}, "scheduler.grace_period", "max_t"),
        (
            {"search_space": {"x1": {"type": "loguniform", "low": 0, "high": 1}}},
            "search_space.x1",
            "",
        ),
        (
            {
                "config": {"epochs": 3, "x1": 1.0},
                "search_space": {"x1": {"type": "uniform", "low": 0, "high": 1}},
            },
            "config.x1",
            "also a search_space",
        ),
        ({"resources": {"num_workers": 2}}, "resources.num_workers", "one process"),
        ({"resources": {"tensor_parallel": 2}}, "resources.tensor_parallel", ""),
    ],
)
def test_cross_field_problems_name_the_field(
    overrides: dict[str, Any], where: str, words: str
) -> None:
    document = spec(**overrides)
    if not where:  # a valid variant: noop's default metric has a default mode
        validate_study(spec_from_mapping(document), CLUSTER)
        return
    found = problems(document)
    assert any(key.startswith(where) for key in found), found
    if words:
        assert any(words in msg for key, msg in found.items() if key.startswith(where)), found


def test_resources_the_cluster_can_never_give_are_refused() -> None:
    document = spec(trainable="mlp_digits", resources={"num_workers": 3, "cpus_per_worker": 2})
    found = problems(document, ClusterCapacity(cpus=4, gpus=0))
    assert "needs 6 CPUs" in found["resources"] and "has 4" in found["resources"]
    gpu = spec(trainable="mlp_digits", resources={"num_workers": 2, "use_gpu": True})
    assert "GPUs" in problems(gpu, ClusterCapacity(cpus=8, gpus=1))["resources.use_gpu"]
    # Without knowing the cluster (autoscaling), only the spec's own checks apply.
    validate_study(spec_from_mapping(document), None)


def test_field_types_and_ranges_are_checked_with_paths() -> None:
    with pytest.raises(InvalidSpec) as caught:
        spec_from_mapping(spec(num_samples=0, resources={"cpus_per_worker": -1}, extra=1))
    locs = {".".join(str(p) for p in loc) for loc, _ in caught.value.errors}
    assert {"num_samples", "resources.cpus_per_worker", "extra"} <= locs


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b"name: [", "application/yaml", "not valid YAML"),
        (b"{", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be a mapping"),
        (b"   ", None, "empty"),
    ],
)
def test_documents_that_are_not_specs(body: bytes, content_type: str | None, words: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec_document(body, content_type)
    assert words in str(caught.value)


def test_yaml_and_json_bodies_read_the_same() -> None:
    as_yaml = parse_spec_document(b"name: a\ntrainable: branin\n", "application/yaml")
    as_json = parse_spec_document(b'{"name": "a", "trainable": "branin"}', "application/json")
    assert as_yaml == as_json


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_every_example_is_a_valid_study(path: Path) -> None:
    document = parse_spec_document(path.read_bytes(), "application/yaml")
    if path.stem.startswith("compare-"):  # a comparison: check the study it runs
        from service.comparisons.spec import parse_comparison, study_document

        document = study_document(parse_comparison(document))
    spec = spec_from_mapping(document)
    gpu = spec.resources.use_gpu
    # The CPU examples fit this project's 4-CPU test cluster; the GPU ones a 2-GPU node.
    capacity = ClusterCapacity(cpus=32, gpus=2) if gpu else ClusterCapacity(cpus=4, gpus=0)
    study = validate_study(spec, capacity)
    assert study.spec.name == document["name"]
