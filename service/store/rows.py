"""Turning database rows into the store's immutable records (deep read-only copies)."""

from __future__ import annotations

from typing import Any

from service.store.base import ApiTokenRecord, ResultRecord, StudyRecord, TrialRecord
from service.store.frozen import freeze
from service.store.states import StudyStatus, TrialState


def study_record(row: Any) -> StudyRecord:
    return StudyRecord(
        id=row.id,
        name=row.name,
        owner=row.owner,
        spec=freeze(row.spec),
        metric=row.metric,
        mode=row.mode,
        status=StudyStatus(row.status),
        error=row.error,
        ray_job_id=row.ray_job_id,
        ray_dashboard_url=row.ray_dashboard_url,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        restarts=row.restarts or 0,
        extensions=row.extensions or 0,
        segments_done=row.segments_done or 0,
        run_seconds=float(row.run_seconds or 0.0),
    )


def trial_record(row: Any) -> TrialRecord:
    return TrialRecord(
        study_id=row.study_id,
        trial_id=row.trial_id,
        number=row.number,
        config=freeze(row.config),
        state=TrialState(row.state),
        error=row.error,
        last_value=row.last_value,
        best_value=row.best_value,
        num_results=row.num_results,
        last_iteration=row.last_iteration,
        created_at=row.created_at,
        finished_at=row.finished_at,
        reason=row.reason,
    )


def result_record(row: Any, *, trial_id: str) -> ResultRecord:
    return ResultRecord(
        study_id=row.study_id,
        trial_id=trial_id,
        iteration=row.iteration,
        metrics=freeze(row.metrics),
        reported_at=row.reported_at,
        stored_at=row.stored_at,
    )


def api_token_record(row: Any) -> ApiTokenRecord:
    return ApiTokenRecord(
        id=row.id,
        token_hash=row.token_hash,
        principal=row.principal,
        is_admin=bool(row.is_admin),
        created_at=row.created_at,
    )
