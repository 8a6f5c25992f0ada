"""Response schemas of the REST API (what clients see)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:  # the CLI imports these schemas; keep it free of torch and SQLAlchemy
    from service.store import ResultRecord, StudyRecord, StudySummary, TrialRecord
    from trainables import TrainableSpec


class TrialPublic(BaseModel):
    trial_id: str
    number: int
    state: str
    config: dict[str, Any]
    error: str | None
    # Why an ERROR trial failed: worker_lost (retries used up), oom, invalid_config, error.
    reason: str | None = None
    last_value: float | None
    best_value: float | None
    num_results: int
    last_iteration: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @classmethod
    def of(cls, trial: TrialRecord) -> TrialPublic:
        return cls(
            trial_id=trial.trial_id,
            number=trial.number,
            state=trial.state.value,
            config=dict(trial.config),
            error=trial.error,
            reason=trial.reason,
            last_value=trial.last_value,
            best_value=trial.best_value,
            num_results=trial.num_results,
            last_iteration=trial.last_iteration,
            created_at=trial.created_at,
            finished_at=trial.finished_at,
        )


class StudyPublic(BaseModel):
    id: int
    name: str
    owner: str
    status: str
    trainable: str
    algorithm: str
    scheduler: str
    metric: str
    mode: str
    budget: int  # trials the study runs at most
    trial_counts: dict[str, int]
    num_trials: int
    num_results: int
    best_trial: TrialPublic | None
    error: str | None
    ray_job_id: str | None
    ray_dashboard_url: str | None
    restarts: int = 0  # times the study's Ray job was resubmitted after it died
    extensions: int = 0  # times its num_samples / time_budget_s were raised
    run_seconds: float = 0.0  # wall time of its ended runs, in all
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    spec: dict[str, Any]

    @classmethod
    def of(cls, summary: StudySummary, budget: int) -> StudyPublic:
        study: StudyRecord = summary.study
        spec = dict(study.spec)
        return cls(
            id=study.id,
            name=study.name,
            owner=study.owner,
            status=study.status.value,
            trainable=str(spec.get("trainable", "")),
            algorithm=str((spec.get("algorithm") or {}).get("name", "random")),
            scheduler=str((spec.get("scheduler") or {}).get("name", "fifo")),
            metric=study.metric,
            mode=study.mode,
            budget=budget,
            trial_counts=dict(summary.trial_counts),
            num_trials=sum(summary.trial_counts.values()),
            num_results=summary.num_results,
            best_trial=TrialPublic.of(summary.best_trial) if summary.best_trial else None,
            error=study.error,
            ray_job_id=study.ray_job_id,
            ray_dashboard_url=study.ray_dashboard_url,
            restarts=study.restarts,
            extensions=study.extensions,
            run_seconds=study.run_seconds,
            created_at=study.created_at,
            started_at=study.started_at,
            finished_at=study.finished_at,
            spec=spec,
        )


class BestTrialPublic(BaseModel):
    """``GET /studies/{id}/best``: ``config`` posts straight back as a new study's
    ``config`` or a comparison's ``baseline`` (with ``trainable`` and ``resources``)."""

    study_id: int
    trial_id: str
    number: int
    state: str
    trainable: str
    metric: str
    mode: str
    value: float
    iteration: int | None
    config: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, Any]
    resources: dict[str, Any]


class ComparisonPublic(BaseModel):
    id: int  # the study's id
    name: str
    status: str
    trainable: str
    baseline: str
    variants: list[str]
    repeats: int
    seed_key: str
    budget: int  # runs in all: (variants + 1) x repeats
    trial_counts: dict[str, int]
    error: str | None
    study_url: str  # the study underneath, in the API
    page_url: str  # the study's page, with the report
    ray_dashboard_url: str | None
    # The report so far: per variant and metric, delta with its 95 % interval over seeds.
    report: dict[str, Any]


class StudyList(BaseModel):
    items: list[StudyPublic]
    total: int
    limit: int
    offset: int


class TrialList(BaseModel):
    items: list[TrialPublic]
    total: int
    limit: int
    offset: int
    # In number order, when the page is full: the ``after`` of the next page (keyset).
    next_after: int | None = None


class ResultPublic(BaseModel):
    iteration: int
    metrics: dict[str, Any]
    reported_at: dt.datetime
    stored_at: dt.datetime

    @classmethod
    def of(cls, result: ResultRecord) -> ResultPublic:
        return cls(
            iteration=result.iteration,
            metrics=dict(result.metrics),
            reported_at=result.reported_at,
            stored_at=result.stored_at,
        )


class TrialResults(BaseModel):
    study_id: int
    trial_id: str
    items: list[ResultPublic]


class TrainablePublic(BaseModel):
    name: str
    description: str
    metrics: list[str]
    final_metrics: list[str]  # reported once, with the last iteration
    default_metric: str
    default_mode: str
    fidelity_key: str | None
    uses_train_workers: bool
    supports_tensor_parallel: bool
    pbt_mutable: list[str] | None  # keys PBT may change mid-trial; None: every key
    default_search_space: dict[str, Any]
    default_config: dict[str, Any]

    @classmethod
    def of(cls, trainable: TrainableSpec) -> TrainablePublic:
        return cls(
            name=trainable.name,
            description=trainable.description,
            metrics=list(trainable.metrics),
            final_metrics=list(trainable.final_metrics),
            default_metric=trainable.default_metric,
            default_mode=trainable.default_mode,
            fidelity_key=trainable.fidelity_key,
            uses_train_workers=trainable.uses_train_workers,
            supports_tensor_parallel=trainable.supports_tensor_parallel,
            pbt_mutable=sorted(trainable.pbt_mutable) if trainable.pbt_mutable else None,
            default_search_space=dict(trainable.default_search_space),
            default_config=dict(trainable.default_config),
        )


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
