"""What ``POST /comparisons`` takes, and the study it runs as.

A comparison is a study: a grid over ``variant`` (the baseline and each named variant)
and the seed, with the baseline as the fixed config and the variants' overrides in the
spec's ``variants``. Everything a study has (the Ray job, the store, the event stream,
the page, restarts after a crash) a comparison has too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from search_spaces import InvalidSpec
from service.spec import (
    MAX_METRIC_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TRAINABLE_LENGTH,
    MAX_VARIANTS,
    VARIANT_KEY,
    ResourcesSpec,
    bound_problems,
)

MAX_REPEATS = 20


class ComparisonSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    trainable: str = Field(min_length=1, max_length=MAX_TRAINABLE_LENGTH)
    # The config every run starts from (e.g. a study's best: GET /studies/{id}/best).
    baseline: dict[str, Any] = Field(default_factory=dict)
    baseline_name: str = Field(default="baseline", min_length=1, max_length=64)
    # A variant's name -> the keys it changes, e.g. {"bf16": {"precision": "bf16"}}.
    variants: dict[str, dict[str, Any]] = Field(min_length=1, max_length=MAX_VARIANTS - 1)
    repeats: int = Field(default=3, ge=2, le=MAX_REPEATS)  # seeds 0..repeats-1 per variant
    seed_key: str = Field(default="seed", min_length=1, max_length=100)
    # The study's metric (for its best trial and page); the report covers every metric.
    metric: str | None = Field(default=None, min_length=1, max_length=MAX_METRIC_LENGTH)
    mode: str | None = Field(default=None, pattern="^(min|max)$")
    resources: ResourcesSpec = ResourcesSpec()
    max_concurrent_trials: int | None = Field(default=None, ge=1, le=10_000)


def parse_comparison(document: Mapping[str, Any]) -> ComparisonSpec:
    """Raises InvalidSpec with every problem's path."""
    problems = bound_problems(document)
    if problems:
        raise InvalidSpec.many(problems)
    try:
        comparison = ComparisonSpec.model_validate(dict(document))
    except ValidationError as error:
        raise InvalidSpec.many(
            [(tuple(item["loc"]), item["msg"]) for item in error.errors()]
        ) from error
    problems = _name_problems(comparison)
    if problems:
        raise InvalidSpec.many(problems)
    return comparison


def _name_problems(comparison: ComparisonSpec) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if comparison.baseline_name in comparison.variants:
        problems.append(
            (("variants", comparison.baseline_name), "has the baseline's name; rename it")
        )
    for name, overrides in comparison.variants.items():
        if not overrides:
            problems.append((("variants", name), "changes nothing; give the keys it sets"))
        if comparison.seed_key in overrides:
            problems.append(
                (("variants", name, comparison.seed_key), "the comparison sets the seed itself")
            )
    if comparison.seed_key in comparison.baseline:
        problems.append(
            (("baseline", comparison.seed_key), "the comparison sets the seed itself (repeats)")
        )
    return problems


def study_document(comparison: ComparisonSpec) -> dict[str, Any]:
    """The study a comparison runs: every variant x seed once, on a grid."""
    names = [comparison.baseline_name, *comparison.variants]
    document: dict[str, Any] = {
        "name": comparison.name,
        "trainable": comparison.trainable,
        "algorithm": {"name": "grid"},
        "search_space": {
            VARIANT_KEY: {"type": "grid", "values": names},
            comparison.seed_key: {"type": "grid", "values": list(range(comparison.repeats))},
        },
        "num_samples": 1,
        "config": dict(comparison.baseline),
        "variants": {comparison.baseline_name: {}, **comparison.variants},
        "comparison": {
            "baseline": comparison.baseline_name,
            "repeats": comparison.repeats,
            "seed_key": comparison.seed_key,
        },
        "resources": comparison.resources.model_dump(),
    }
    if comparison.metric is not None:
        document["metric"] = comparison.metric
    if comparison.mode is not None:
        document["mode"] = comparison.mode
    if comparison.max_concurrent_trials is not None:
        document["max_concurrent_trials"] = comparison.max_concurrent_trials
    return document


def comparison_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """A problem found in the study a comparison runs, at the comparison's own field."""
    if loc[:1] == ("config",):
        return ("baseline", *loc[1:])
    if loc[:2] == ("search_space", VARIANT_KEY):
        return ("variants",)
    if loc[:1] == ("search_space",):
        return ("repeats",)
    return loc
