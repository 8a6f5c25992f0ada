"""The events table's SQL: appending study, trial and result events, and reading them back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, and_, func, insert, select
from sqlalchemy.orm import Session

from service.store.base import EventRecord, IngestedResult
from service.store.frozen import freeze
from service.store.models import Event, Result, Trial

EVENTS = cast(Table, Event.__table__)
_TRIALS = cast(Table, Trial.__table__)
_RESULTS = cast(Table, Result.__table__)


def study_event(study_id: int, status: str, error: str | None = None) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "kind": "study",
        "trial_pk": None,
        "iteration": None,
        "data": {"status": status, "error": error},
    }


def trial_event(study_id: int, trial_pk: int, state: str, error: str | None) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "kind": "trial",
        "trial_pk": trial_pk,
        "iteration": None,
        "data": {"state": state, "error": error},
    }


def result_event(study_id: int, trial_pk: int, iteration: int) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "kind": "result",
        "trial_pk": trial_pk,
        "iteration": iteration,
        "data": None,
    }


def append(session: Session, events: Iterable[Mapping[str, Any]]) -> None:
    """Append events in the caller's transaction (which holds the study's row lock)."""
    rows = list(events)
    if rows:
        session.execute(insert(EVENTS), rows)


def read_after(session: Session, study_id: int, after_id: int, limit: int) -> list[EventRecord]:
    """The study's events after ``after_id``: trial and result rows joined in."""
    query = (
        select(
            EVENTS.c.id,
            EVENTS.c.kind,
            EVENTS.c.iteration,
            EVENTS.c.data,
            _TRIALS.c.trial_id,
            _TRIALS.c.number,
            _TRIALS.c.config,
            _RESULTS.c.metrics,
            _RESULTS.c.reported_at,
            _RESULTS.c.stored_at,
        )
        .select_from(EVENTS)
        .outerjoin(_TRIALS, _TRIALS.c.id == EVENTS.c.trial_pk)
        .outerjoin(
            _RESULTS,
            and_(
                _RESULTS.c.study_id == EVENTS.c.study_id,
                _RESULTS.c.trial_pk == EVENTS.c.trial_pk,
                _RESULTS.c.iteration == EVENTS.c.iteration,
            ),
        )
        .where(EVENTS.c.study_id == study_id, EVENTS.c.id > after_id)
        .order_by(EVENTS.c.id)
        .limit(limit)
    )
    records = []
    for row in session.execute(query):
        data: dict[str, Any]
        if row.kind == "study":
            data = dict(row.data or {})
        elif row.kind == "trial":
            data = {
                "trial_id": row.trial_id,
                "number": row.number,
                **(row.data or {}),
                "config": row.config,
            }
        else:
            data = {
                "trial_id": row.trial_id,
                "number": row.number,
                "iteration": row.iteration,
                "metrics": row.metrics,
                "reported_at": row.reported_at.isoformat() if row.reported_at else None,
                "stored_at": row.stored_at.isoformat() if row.stored_at else None,
            }
        records.append(EventRecord(row.id, study_id, row.kind, freeze(data)))
    return records


def last_id(session: Session, study_id: int | None) -> int:
    query = select(func.max(EVENTS.c.id))
    if study_id is not None:
        query = query.where(EVENTS.c.study_id == study_id)
    return int(session.scalar(query) or 0)


def ingested_after(session: Session, after_id: int, limit: int) -> Sequence[IngestedResult]:
    query = (
        select(EVENTS.c.id, _RESULTS.c.reported_at, _RESULTS.c.stored_at)
        .select_from(EVENTS)
        .join(
            _RESULTS,
            and_(
                _RESULTS.c.study_id == EVENTS.c.study_id,
                _RESULTS.c.trial_pk == EVENTS.c.trial_pk,
                _RESULTS.c.iteration == EVENTS.c.iteration,
            ),
        )
        .where(EVENTS.c.id > after_id, EVENTS.c.kind == "result")
        .order_by(EVENTS.c.id)
        .limit(limit)
    )
    return tuple(IngestedResult(r.id, r.reported_at, r.stored_at) for r in session.execute(query))
