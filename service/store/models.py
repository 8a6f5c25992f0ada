"""The study store's tables as SQLAlchemy 2 declarative models (studies, trials, results, events).

Why the keys look the way they do (a study may hold 100,000 trials x 10 results):

- ``trials``: ``(study_id, trial_id)`` and ``(study_id, number)`` are unique (numbers are
  dense, 0..n-1). ``(study_id, best_value)`` serves the best trial and the by-best order;
  ``(study_id, state, number)`` and ``(study_id, state, best_value)`` serve state counts
  and a state filter in either order, so every page is an index range scan however few
  trials match. ``(study_id, id)`` is unique only so that results can reference a trial
  by both columns (below).
- ``results``: ``UNIQUE(study_id, trial_pk, iteration)`` is the idempotency key and the
  one index the table needs: reads of a trial's results, and the lookups behind both
  ``ON DELETE CASCADE`` foreign keys, are prefix scans of it. That is why the trial
  foreign key is the pair ``(study_id, trial_pk) -> trials(study_id, id)``: with a plain
  ``trial_pk -> trials.id`` key, every deleted trial would scan the whole results table
  (neither SQLite nor PostgreSQL indexes a foreign key by itself).
- ``studies`` ids are never reused (``AUTOINCREMENT`` on SQLite), so a deleted study's
  late writer can never write into a new study. ``studies.num_results`` counts the
  study's results (kept by the writer under the study's row lock), so the count is not a
  scan of a million rows. For the same reason the study row keeps its trials' counts per
  state (``trials_pending`` ... ``trials_pruned``) and its best trial (``best_trial_pk``,
  ``best_value``; no foreign key: only trials without results are ever deleted alone,
  and those are never the best), all updated in the transaction that changes them.
  ``best_steps`` (the best-so-far chart's points) likewise.
  ``revision`` grows with every write to the study or its trials and results: a reader
  that remembers it knows whether what it read is still current (the API's cache).

- ``events``: an append-only log of what happened to a study (status changes, trials
  created or changed state, results stored), written in the same transaction as the
  change itself, under the study's row lock, so within a study ids grow in commit
  order. ``(study_id, id)`` serves "the study's events after id N" (the event stream's
  ``Last-Event-ID``). A result event holds only its key; readers join ``results``.
  Ids are never reused (``AUTOINCREMENT`` on SQLite).

- ``studies(owner, id)`` serves a principal's own studies, newest first.
- ``api_tokens``: tokens made by ``hpo token create``, kept only as their SHA-256
  (``token_hash``, unique: the lookup of every request that brings such a token).

Status, state and mode are stored as their string values; times as UTC (see coltypes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.store.coltypes import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the fast rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Study(Base):
    __tablename__ = "studies"
    __table_args__ = (
        Index("ix_studies_owner_id", "owner", "id"),
        Index("ix_studies_ray_job_id", "ray_job_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str] = mapped_column(String(255))
    spec: Mapped[dict[str, Any]]
    metric: Mapped[str] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    ray_job_id: Mapped[str | None] = mapped_column(String(255))
    ray_dashboard_url: Mapped[str | None] = mapped_column(Text)
    num_results: Mapped[int] = mapped_column(BigInteger, default=0)
    # Times the study's Ray job was resubmitted after it died.
    restarts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Continuation (POST /studies/{id}/extend): how often its targets were raised, how
    # many runs ("segments", one Tune experiment each) ended, and their seconds in all.
    extensions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    segments_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    run_seconds: Mapped[float] = mapped_column(Double, default=0.0, server_default="0")
    created_at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    # Kept current by every write (see the module's doc): reads never count trials.
    revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    trials_pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    trials_running: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    trials_terminated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    trials_error: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    trials_pruned: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    best_trial_pk: Mapped[int | None] = mapped_column(BigId)
    best_value: Mapped[float | None] = mapped_column(Double)
    # [finished, value] each time a finishing trial beat every earlier one (see totals).
    best_steps: Mapped[list[Any] | None] = mapped_column(JSON)


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "trial_id"),
        UniqueConstraint("study_id", "id"),
        Index("ix_trials_study_id_number", "study_id", "number", unique=True),
        Index("ix_trials_study_id_best_value", "study_id", "best_value"),
        Index("ix_trials_study_id_state_number", "study_id", "state", "number"),
        Index("ix_trials_study_id_state_best_value", "study_id", "state", "best_value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    trial_id: Mapped[str] = mapped_column(String(255))
    number: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    # Why an ERROR trial failed: worker_lost, oom, invalid_config, error.
    reason: Mapped[str | None] = mapped_column(String(32))
    last_value: Mapped[float | None] = mapped_column(Double)
    best_value: Mapped[float | None] = mapped_column(Double)
    num_results: Mapped[int] = mapped_column(Integer, default=0)
    last_iteration: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]


class Result(Base):
    __tablename__ = "results"
    __table_args__ = (
        ForeignKeyConstraint(
            ["study_id", "trial_pk"], ["trials.study_id", "trials.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("study_id", "trial_pk", "iteration"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    trial_pk: Mapped[int] = mapped_column(BigId)
    iteration: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]]
    reported_at: Mapped[dt.datetime]
    stored_at: Mapped[dt.datetime]


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_study_id_id", "study_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "study" | "trial" | "result"
    trial_pk: Mapped[int | None] = mapped_column(BigId)
    iteration: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    principal: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime]
