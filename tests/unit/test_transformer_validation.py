"""Study validation of ``transformer_lm``: impossible shapes are refused with their field paths."""

from __future__ import annotations

from typing import Any

import pytest

from search_spaces import InvalidSpec, load_preset_document
from service.spec import spec_from_mapping
from service.validation import ClusterCapacity, ValidatedStudy, validate_study

CPUS_4 = ClusterCapacity(cpus=4, gpus=0)
GPUS_2 = ClusterCapacity(cpus=32, gpus=2)


def study(capacity: ClusterCapacity = CPUS_4, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"name": "lm", "trainable": "transformer_lm"}
    document.update(overrides)
    return document


def problems(document: dict[str, Any], capacity: ClusterCapacity = CPUS_4) -> dict[str, str]:
    with pytest.raises(InvalidSpec) as caught:
        validate_study(spec_from_mapping(document), capacity)
    return {".".join(str(p) for p in loc): msg for loc, msg in caught.value.errors}


def valid(document: dict[str, Any], capacity: ClusterCapacity = CPUS_4) -> ValidatedStudy:
    return validate_study(spec_from_mapping(document), capacity)


def test_the_default_space_is_the_playbook_preset_and_runs_on_cpu() -> None:
    checked = valid(study(algorithm="bohb", scheduler="hyperband", resources={"num_workers": 2}))
    preset = load_preset_document("transformer_playbook")
    assert checked.trainable.default_search_space == preset["search_space"]
    assert checked.metric == "val_loss" and checked.mode == "min"
    assert checked.max_t == preset["config"]["evals"]


def test_the_gpu_preset_validates_with_gpus() -> None:
    preset = load_preset_document("transformer_playbook_gpu")
    document = study(
        search_space=preset["search_space"],
        config=preset["config"],
        resources={"num_workers": 2, "use_gpu": True},
        algorithm="bohb",
        scheduler="hyperband",
    )
    valid(document, GPUS_2)
    assert "search_space.precision" in problems({**document, "resources": {"num_workers": 1}})


@pytest.mark.parametrize(
    ("overrides", "where", "words"),
    [
        # a fixed shape that cannot work
        ({"config": {"d_model": 64, "n_heads": 3}}, "config.n_heads", "does not divide d_model"),
        # a searched value that one trial could draw
        (
            {"search_space": {"n_heads": {"type": "choice", "values": [2, 3]}}},
            "search_space.n_heads",
            "n_heads 3 does not divide d_model 64",
        ),
        (
            {
                "search_space": {"d_model": {"type": "randint", "low": 60, "high": 64}},
                "config": {"n_heads": 4},
            },
            "search_space.d_model",
            "does not divide d_model 61",
        ),
        (
            {"resources": {"num_workers": 1, "tensor_parallel": 4}, "config": {"n_heads": 2}},
            "resources.tensor_parallel",
            "does not divide n_heads 2",
        ),
        (
            {
                "resources": {"num_workers": 1, "tensor_parallel": 3},
                "config": {"n_heads": 3, "d_model": 96, "mlp_ratio": 1},
            },
            "",
            "",
        ),
        (
            {"resources": {"num_workers": 2, "tensor_parallel": 4}},
            "resources",
            "needs 8 CPUs (2 workers x tensor_parallel 4",
        ),
        (
            {
                "resources": {"num_workers": 2, "tensor_parallel": 2, "use_gpu": True},
                "config": {"precision": "bf16"},
            },
            "resources.use_gpu",
            "needs 4 GPUs",
        ),
        ({"config": {"precision": "fp16"}}, "config.precision", "fp16 needs a GPU"),
        (
            {"search_space": {"attention": {"type": "choice", "values": ["full", "flash"]}}},
            "search_space.attention",
            "got 'flash'",
        ),
        ({"config": {"n_layers": 0}}, "config.n_layers", ">= 1"),
        ({"config": {"dropout": 1.5}}, "config.dropout", "must be in"),
        ({"metric": "quant_val_loss"}, "metric", "reported once, at the end"),
        ({"metric": "val_acc"}, "metric", "does not report"),
    ],
)
def test_bad_studies_are_refused_naming_the_field(
    overrides: dict[str, Any], where: str, words: str
) -> None:
    document = study(**overrides)
    if not where:  # a shape that works (3 heads over 3 tensor-parallel ranks of 96 / 96)
        valid(document, ClusterCapacity(cpus=3, gpus=0))
        return
    found = problems(document)
    assert where in found, found
    assert words in found[where]


def test_two_by_two_workers_fit_four_cpus() -> None:
    checked = valid(study(resources={"num_workers": 2, "tensor_parallel": 2}))
    assert checked.resources.total_workers == 4


def test_pbt_mutates_only_what_a_copied_trial_can_change() -> None:
    flat = {
        "lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2},
        "weight_decay": {"type": "uniform", "low": 0.0, "high": 0.1},
    }
    valid(study(scheduler="pbt", search_space=flat))
    shaped = problems(
        study(
            scheduler="pbt",
            search_space={**flat, "d_model": {"type": "choice", "values": [32, 64]}},
        )
    )
    assert "cannot change 'd_model'" in shaped["search_space.d_model"]
    default_space = problems(study(scheduler="pbt"))
    assert "conditional choice" in default_space["search_space.attention"]
    assert "algorithm.name" in problems(
        study(scheduler="pbt", algorithm="hyperopt", search_space=flat)
    )
