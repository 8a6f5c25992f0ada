"""The study store: durable studies, trials and results, and ``open_store`` to get one."""

from __future__ import annotations

from service.store.base import (
    ApiTokenRecord,
    EventRecord,
    IngestedResult,
    Page,
    ResultRecord,
    ResultWrite,
    StudyRecord,
    StudyStore,
    StudySummary,
    TrialRecord,
    TrialUpdate,
    runs_of,
)
from service.store.errors import (
    InvalidTransition,
    StoreError,
    StoreUnavailable,
    StudyExtended,
    StudyNotFound,
    TokenExists,
    TokenNotFound,
    TrialNotFound,
)
from service.store.states import (
    ALLOWED_STUDY_TRANSITIONS,
    FINISHED_TRIAL_STATES,
    TERMINAL_STUDY_STATES,
    StudyStatus,
    TrialState,
)


def open_store(url: str) -> StudyStore:
    """The store at ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``): creates
    the engine, upgrades the schema to the newest migration and returns the store.
    Raises StoreUnavailable when the database cannot be reached, ValueError for a
    database other than SQLite or PostgreSQL."""
    from service.store.sql import SqlStudyStore

    return SqlStudyStore.from_url(url)


__all__ = [
    "ApiTokenRecord",
    "EventRecord",
    "IngestedResult",
    "ALLOWED_STUDY_TRANSITIONS",
    "FINISHED_TRIAL_STATES",
    "TERMINAL_STUDY_STATES",
    "InvalidTransition",
    "Page",
    "ResultRecord",
    "ResultWrite",
    "StoreError",
    "StoreUnavailable",
    "StudyExtended",
    "StudyNotFound",
    "StudyRecord",
    "StudyStatus",
    "StudyStore",
    "StudySummary",
    "TokenExists",
    "TokenNotFound",
    "TrialNotFound",
    "TrialRecord",
    "TrialState",
    "TrialUpdate",
    "open_store",
    "runs_of",
]
