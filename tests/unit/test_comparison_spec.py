"""A comparison's spec: its checks (with the field path), the study it runs, and how a
trial's config comes from the baseline and its variant."""

from __future__ import annotations

from typing import Any

import pytest

from search_spaces import InvalidSpec
from service.comparisons.outcomes import summarize
from service.comparisons.spec import comparison_loc, parse_comparison, study_document
from service.spec import spec_from_mapping
from service.store import ResultRecord
from service.validation import validate_study


def comparison(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "playbook",
        "trainable": "transformer_lm",
        "baseline": {"evals": 2, "steps_per_eval": 2},
        "variants": {
            "token_dropout": {"token_dropout": 0.1},
            "accum2": {"grad_accum_steps": 2, "batch_size": 8},
        },
        "repeats": 3,
    }
    document.update(overrides)
    return document


def problems(document: dict[str, Any]) -> dict[tuple[Any, ...], str]:
    with pytest.raises(InvalidSpec) as error:
        parse_comparison(document)
    return dict(error.value.errors)


def test_the_study_runs_every_variant_and_seed_once() -> None:
    document = study_document(parse_comparison(comparison()))
    study = validate_study(spec_from_mapping(document))
    assert study.spec.algorithm.name == "grid" and study.trial_budget == 9
    assert document["search_space"]["variant"]["values"] == ["baseline", "token_dropout", "accum2"]
    assert document["search_space"]["seed"]["values"] == [0, 1, 2]
    # A trial's config: the baseline, its variant's overrides, its seed; no "variant".
    config = study.trial_config({"variant": "accum2", "seed": 1})
    assert config["grad_accum_steps"] == 2 and config["batch_size"] == 8
    assert config["evals"] == 2 and config["seed"] == 1 and "variant" not in config
    assert study.trial_config({"variant": "baseline", "seed": 0}).get("grad_accum_steps", 1) == 1
    assert study.planned_iterations({"variant": "accum2", "seed": 0}) == 2


@pytest.mark.parametrize(
    ("overrides", "loc", "words"),
    [
        ({"repeats": 1}, ("repeats",), "greater than or equal to 2"),
        ({"variants": {}}, ("variants",), "at least 1"),
        ({"variants": {"empty": {}}}, ("variants", "empty"), "changes nothing"),
        ({"variants": {"baseline": {"lr": 0.1}}}, ("variants", "baseline"), "baseline's name"),
        ({"baseline": {"seed": 3}}, ("baseline", "seed"), "sets the seed"),
        ({"variants": {"s": {"seed": 3}}}, ("variants", "s", "seed"), "sets the seed"),
        ({"colour": "red"}, ("colour",), "Extra inputs"),
    ],
)
def test_bad_comparisons_name_the_field(
    overrides: dict[str, Any], loc: tuple[Any, ...], words: str
) -> None:
    found = problems(comparison(**overrides))
    assert loc in found and words in found[loc], found


def test_a_variant_the_trainable_cannot_run_is_refused_at_its_key() -> None:
    document = study_document(
        parse_comparison(comparison(variants={"fp8": {"precision": "fp8"}, "bad name!": {"lr": 1}}))
    )
    with pytest.raises(InvalidSpec) as error:
        validate_study(spec_from_mapping(document))
    found = {comparison_loc(loc): msg for loc, msg in error.value.errors}
    assert "precision must be one of" in found[("variants", "fp8", "precision")]
    assert "letters, digits" in found[("variants", "bad name!")]


def test_baseline_problems_are_reported_at_the_baseline() -> None:
    document = study_document(parse_comparison(comparison(baseline={"lr": -1})))
    with pytest.raises(InvalidSpec) as error:
        validate_study(spec_from_mapping(document))
    assert ("baseline", "lr") in {comparison_loc(loc) for loc, _ in error.value.errors}


def result(iteration: int, **metrics: float) -> ResultRecord:
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    return ResultRecord(1, "t", iteration, metrics, now, now)


def test_a_run_is_summarised_per_metric() -> None:
    summary = summarize(
        [
            result(1, val_loss=3.0, tokens_per_s=100.0, latency_ms=9.0, peak_mem_mb=50.0),
            result(2, val_loss=2.0, tokens_per_s=300.0, latency_ms=5.0, peak_mem_mb=70.0),
            result(3, val_loss=1.5, tokens_per_s=200.0, latency_ms=4.0, peak_mem_mb=60.0),
        ]
    )
    assert summary["val_loss"] == 1.5  # the last
    assert summary["tokens_per_s"] == 200.0 and summary["latency_ms"] == 5.0  # medians
    assert summary["peak_mem_mb"] == 70.0  # the largest
