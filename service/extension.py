"""Continuing a study: the request that raises its targets, and warm starts from others."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from search_spaces import InvalidSpec
from service.errors import CannotExtend
from service.spec import MAX_NUM_SAMPLES, StudySpec, spec_from_mapping
from service.store import StudyRecord, StudyStatus
from service.validation import ValidatedStudy, validate_study

WARM_START_ALGORITHMS = ("hyperopt", "bohb")


class ExtendRequest(BaseModel):
    """``POST /studies/{id}/extend``: the study's new totals (not increments)."""

    model_config = ConfigDict(extra="forbid")

    num_samples: int | None = Field(default=None, ge=1, le=MAX_NUM_SAMPLES)
    time_budget_s: float | None = Field(default=None, gt=0, le=30 * 24 * 3600)

    @model_validator(mode="after")
    def _something(self) -> ExtendRequest:
        if self.num_samples is None and self.time_budget_s is None:
            raise ValueError("give num_samples, time_budget_s or both (the new totals)")
        return self


def extended_spec(record: StudyRecord, request: ExtendRequest, trials_so_far: int) -> StudySpec:
    """The study's spec with its raised targets. Raises InvalidSpec (a target not raised),
    CannotExtend (a grid, a failed study, nothing left to run)."""
    spec = spec_from_mapping(dict(record.spec))
    if record.status == StudyStatus.FAILED:
        raise CannotExtend(
            f"study {record.id} FAILED; submit a new study (warm_start_from works with "
            "hyperopt and bohb)"
        )
    if spec.algorithm.name == "grid":
        raise CannotExtend(
            f"study {record.id} searches a grid: every point has its runs; raising "
            "num_samples would run the same configurations again"
        )
    problems: list[tuple[tuple[str | int, ...], str]] = []
    updates: dict[str, Any] = {}
    if request.num_samples is not None:
        if request.num_samples <= spec.num_samples:
            problems.append(
                (
                    ("num_samples",),
                    f"must be above the study's num_samples ({spec.num_samples}): "
                    "give the new total",
                )
            )
        updates["num_samples"] = request.num_samples
    stop = spec.stop
    if request.time_budget_s is not None:
        if stop.time_budget_s is None:
            problems.append(
                (("time_budget_s",), "the study has no time budget: there is none to raise")
            )
        elif request.time_budget_s <= stop.time_budget_s:
            problems.append(
                (
                    ("time_budget_s",),
                    f"must be above the study's time_budget_s ({stop.time_budget_s:g}): "
                    "give the new total",
                )
            )
        stop = stop.model_copy(update={"time_budget_s": request.time_budget_s})
    if problems:
        raise InvalidSpec.many(problems)
    target = int(updates.get("num_samples", spec.num_samples))
    if target <= trials_so_far:
        raise CannotExtend(
            f"study {record.id} has run {trials_so_far} trials of its {spec.num_samples}; "
            "raise num_samples to give it more"
        )
    return spec.model_copy(update={**updates, "stop": stop})


def check_warm_start(study: ValidatedStudy, source: StudyRecord | None) -> None:
    """A study may warm-start from another (``warm_start_from``) of the same trainable,
    search space, metric and model-based algorithm that has run. Raises InvalidSpec."""
    source_id = study.spec.warm_start_from
    loc = ("warm_start_from",)
    if source_id is None:
        return
    if source is None:
        raise InvalidSpec(loc, f"study {source_id} not found")
    algorithm = study.spec.algorithm.name
    if algorithm not in WARM_START_ALGORITHMS:
        raise InvalidSpec(
            loc,
            f"needs a model-based algorithm ({' or '.join(WARM_START_ALGORITHMS)}); "
            f"{algorithm!r} learns nothing from earlier trials",
        )
    if source.status == StudyStatus.PENDING and source.segments_done == 0:
        raise InvalidSpec(loc, f"study {source_id} has not run yet; nothing to start from")
    try:
        earlier = validate_study(spec_from_mapping(dict(source.spec)))
    except InvalidSpec as error:
        raise InvalidSpec(loc, f"study {source_id}'s spec is no longer valid: {error}") from None
    differences = [
        what
        for what, mine, theirs in (
            ("trainable", study.trainable.name, earlier.trainable.name),
            ("algorithm", algorithm, earlier.spec.algorithm.name),
            ("metric", study.metric, earlier.metric),
            ("mode", study.mode, earlier.mode),
            ("search space", dict(study.space_document), dict(earlier.space_document)),
        )
        if mine != theirs
    ]
    if differences:
        raise InvalidSpec(
            loc,
            f"study {source_id} differs in {', '.join(differences)}; a searcher can only "
            "go on from a study with the same trainable, algorithm, metric, mode and "
            "search space",
        )
