"""The study store interface: what every store implementation promises.

Rules every implementation keeps (the contract tests in tests/store check them):

- Reads return plain, immutable records (copies); changing one never touches the store.
- Every study status change goes through :meth:`StudyStore.transition_study`, which
  checks ``ALLOWED_STUDY_TRANSITIONS`` under a row lock and raises
  :class:`InvalidTransition` otherwise. Terminal states are final.
- Results are keyed by (study, trial, iteration): writing the same key twice keeps the
  first row and is not an error, so a writer may retry a batch safely.
- A trial's ``last_value`` / ``best_value`` follow the study's metric and mode and are
  kept up to date as results arrive, so best-trial reads do not scan results. A study's
  trial counts per state and its best trial are kept up to date the same way, so
  reading a study does not count or rank its trials.
- Every write to a study, its trials or its results raises the study's revision, in the
  same transaction: a reader that saw revision r and still finds r has missed nothing.
- Every status change, trial creation or trial state change and stored result appends an
  event in the same transaction; a study's events have increasing ids in commit order
  and ids are never reused, so "events after id N" is a complete, duplicate-free resume.
- The one way back from a terminal state is :meth:`StudyStore.extend_study` (a COMPLETED
  or STOPPED study whose targets are raised becomes PENDING again); every other
  terminal state is final.
- A finished trial (TERMINATED, ERROR, PRUNED) may only move to another finished state
  when a late status arrives; it never goes back to PENDING/RUNNING.
- Every study has an owner. Reads that take ``owner`` answer StudyNotFound for a study
  of another owner, exactly as for a study that does not exist; ``owner=None`` (an
  admin) sees every study.
- API tokens are stored only as hashes; the store never sees a token itself.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.store.states import StudyStatus, TrialState


@dataclass(frozen=True)
class StudyRecord:
    id: int
    name: str
    owner: str
    spec: Mapping[str, Any]
    metric: str
    mode: str  # "min" | "max"
    status: StudyStatus
    error: str | None
    ray_job_id: str | None
    ray_dashboard_url: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    restarts: int = 0  # times its Ray job was resubmitted after dying
    extensions: int = 0  # times its num_samples / time_budget_s were raised (extend)
    segments_done: int = 0  # runs (one Tune experiment each) that ended
    run_seconds: float = 0.0  # wall time of those runs, in all


@dataclass(frozen=True)
class TrialRecord:
    study_id: int
    trial_id: str  # Tune's trial id, unique within the study
    number: int  # 0, 1, 2 ... in order of creation within the study
    config: Mapping[str, Any]
    state: TrialState
    error: str | None
    last_value: float | None
    best_value: float | None
    num_results: int
    last_iteration: int | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    reason: str | None = None  # why an ERROR trial failed (worker_lost, oom, ...)


@dataclass(frozen=True)
class ResultRecord:
    study_id: int
    trial_id: str
    iteration: int  # Tune's training_iteration, 1-based
    metrics: Mapping[str, Any]
    reported_at: dt.datetime  # when the trial reported it
    stored_at: dt.datetime  # when the row reached the store


@dataclass(frozen=True)
class StudySummary:
    """A study with what the API shows beside it: counts per trial state and best trial."""

    study: StudyRecord
    trial_counts: Mapping[str, int]
    num_results: int
    best_trial: TrialRecord | None
    # The study's revision when this was read: it grows with every write to the study,
    # its trials or its results (see :meth:`StudyStore.revisions`).
    revision: int = 0


@dataclass(frozen=True)
class TrialUpdate:
    """A trial as the runner sees it: created or changed state. Upserted by trial_id."""

    trial_id: str
    state: TrialState
    config: Mapping[str, Any] | None = None  # required when the trial is new
    error: str | None = None
    reason: str | None = None  # why it failed: worker_lost, oom, invalid_config, error


@dataclass(frozen=True)
class ResultWrite:
    trial_id: str
    iteration: int
    metrics: Mapping[str, Any]
    reported_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


def runs_of(
    items: Sequence[TrialUpdate | ResultWrite],
) -> list[list[TrialUpdate] | list[ResultWrite]]:
    """``items`` cut into runs of trial updates and runs of results, in order: a run is
    applied as a whole, so the store sees everything in the order it was produced."""
    runs: list[list[Any]] = []
    for item in items:
        if runs and isinstance(runs[-1][0], type(item)):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


@dataclass(frozen=True)
class EventRecord:
    """One entry of a study's event log. ``kind`` is "study" (``data``: status, error),
    "trial" (trial_id, number, state, error, config) or "result" (trial_id, number,
    iteration, metrics, reported_at, stored_at as ISO strings)."""

    id: int
    study_id: int
    kind: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class IngestedResult:
    """A stored result as the ingest metrics see it: its event id and its two times."""

    event_id: int
    reported_at: dt.datetime
    stored_at: dt.datetime


@dataclass(frozen=True)
class ApiTokenRecord:
    """A stored API token: the SHA-256 of the token (never the token), who it acts for."""

    id: int
    token_hash: str
    principal: str
    is_admin: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    total: int
    limit: int
    offset: int


class StudyStore(abc.ABC):
    """Durable storage of studies, trials and results."""

    # --- studies -------------------------------------------------------------------
    @abc.abstractmethod
    def create_study(
        self, *, name: str, spec: Mapping[str, Any], metric: str, mode: str, owner: str = "local"
    ) -> StudyRecord:
        """Store a new study in PENDING."""

    @abc.abstractmethod
    def get_study(self, study_id: int, *, owner: str | None = None) -> StudyRecord:
        """Raises StudyNotFound, also when ``owner`` is given and is not the study's."""

    @abc.abstractmethod
    def summarize_study(self, study_id: int, *, owner: str | None = None) -> StudySummary:
        """The study with trial counts per state, result count and best trial.
        Raises StudyNotFound, also when ``owner`` is given and is not the study's."""

    @abc.abstractmethod
    def list_studies(
        self,
        *,
        status: StudyStatus | None = None,
        owner: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """Studies, newest first; ``items`` are StudyRecord. ``owner``: only that owner's."""

    @abc.abstractmethod
    def transition_study(
        self,
        study_id: int,
        to: StudyStatus,
        *,
        error: str | None = None,
        if_extensions: int | None = None,
    ) -> StudyRecord:
        """The one way a study's status changes (besides :meth:`extend_study`). Sets
        started_at on RUNNING and finished_at on a terminal state. A transition to the
        current state is a no-op. ``if_extensions``: only if the study's ``extensions``
        still equal it (a runner ending a study it read the targets of), else raises
        StudyExtended. Raises StudyNotFound, InvalidTransition."""

    @abc.abstractmethod
    def extend_study(self, study_id: int, *, spec: Mapping[str, Any], note: str) -> StudyRecord:
        """Raise a study's targets: store ``spec`` (its new num_samples / time budget) and
        count an extension, atomically. A PENDING or RUNNING study keeps its status (its
        runner reads the new targets when its run ends); a COMPLETED or STOPPED one
        becomes PENDING again, without a Ray job (the caller launches one). Appends a
        study event with ``note``. Raises StudyNotFound, InvalidTransition (FAILED)."""

    @abc.abstractmethod
    def end_segment(self, study_id: int, *, segment: int, seconds: float) -> StudyRecord:
        """Record that run ``segment`` of the study ended after ``seconds``: segments_done
        becomes ``segment + 1`` and run_seconds grows (once per segment: a repeat is a
        no-op). Raises StudyNotFound."""

    @abc.abstractmethod
    def set_ray_job(self, study_id: int, *, job_id: str, dashboard_url: str | None) -> None:
        """Record the study's Ray job. Raises StudyNotFound."""

    @abc.abstractmethod
    def study_of_job(self, job_id: str) -> int | None:
        """The id of the study whose Ray job is ``job_id`` (whatever its status), or None.
        A warm runner waits on this for the study it is given."""

    @abc.abstractmethod
    def restart_study(
        self,
        study_id: int,
        *,
        from_job_id: str,
        to_job_id: str,
        dashboard_url: str | None,
        reason: str,
    ) -> StudyRecord | None:
        """Record that the study's dead Ray job ``from_job_id`` is replaced by
        ``to_job_id`` (restarts + 1, an event with ``reason``), atomically. None when the
        study has finished or its job is no longer ``from_job_id`` (someone else restarted
        it): the caller must then not submit."""

    @abc.abstractmethod
    def discard_trials(self, study_id: int, trial_ids: Sequence[str], *, note: str) -> int:
        """Trials a dead driver created after Tune last saved its experiment state (the
        restored run never heard of them): those without results are deleted, those with
        results end PRUNED with ``note`` (their results stay). Returns how many were
        deleted."""

    @abc.abstractmethod
    def delete_study(self, study_id: int) -> None:
        """Delete a study in a terminal state with its trials and results.
        Raises StudyNotFound, InvalidTransition (not terminal)."""

    # --- trials and results ---------------------------------------------------------
    @abc.abstractmethod
    def upsert_trials(self, study_id: int, updates: Sequence[TrialUpdate]) -> None:
        """Create new trials (numbered in order) and apply state changes in one
        transaction. Raises StudyNotFound."""

    @abc.abstractmethod
    def add_results(self, study_id: int, results: Sequence[ResultWrite]) -> int:
        """Insert results idempotently; returns how many were new. A result for a trial
        not yet known creates it in RUNNING with an empty config.
        Raises StudyNotFound."""

    @abc.abstractmethod
    def write_batch(self, study_id: int, items: Sequence[TrialUpdate | ResultWrite]) -> int:
        """Trial updates and results mixed, applied in the order given as one transaction
        (as ``upsert_trials`` and ``add_results`` would, run by run of one kind): all of
        it or nothing. Returns how many results were new. Raises StudyNotFound."""

    @abc.abstractmethod
    def list_trials(
        self,
        study_id: int,
        *,
        state: TrialState | None = None,
        limit: int = 100,
        offset: int = 0,
        order: str = "number",  # "number" | "best"
        after: int | None = None,
    ) -> Page:
        """Trials of a study; ``items`` are TrialRecord. ``after``: only trials numbered
        above it (keyset paging; number order only, else ValueError); ``total`` still
        counts every trial that matches ``state``. Raises StudyNotFound."""

    @abc.abstractmethod
    def trials_by_numbers(self, study_id: int, numbers: Sequence[int]) -> Sequence[TrialRecord]:
        """The study's trials with these numbers (those that exist), by number.
        Raises StudyNotFound."""

    @abc.abstractmethod
    def best_steps(self, study_id: int) -> Sequence[tuple[int, float]]:
        """Where the best value among finished trials improved, in the order trials
        finished: (trials finished so far, that best). Kept as trials finish; a result
        that arrives after its trial finished does not change it. Raises StudyNotFound."""

    @abc.abstractmethod
    def revisions(self, study_ids: Sequence[int]) -> Mapping[int, int]:
        """The current revision of each of these studies that exists (deleted ones are
        absent). One indexed read, whatever the studies' sizes."""

    @abc.abstractmethod
    def get_trial(self, study_id: int, trial_id: str) -> TrialRecord:
        """Raises StudyNotFound, TrialNotFound."""

    @abc.abstractmethod
    def get_results(self, study_id: int, trial_id: str) -> Sequence[ResultRecord]:
        """A trial's results by iteration. Raises StudyNotFound, TrialNotFound."""

    @abc.abstractmethod
    def best_trial(self, study_id: int) -> TrialRecord | None:
        """The trial with the best ``best_value`` for the study's mode, or None.
        Raises StudyNotFound."""

    @abc.abstractmethod
    def count_results(self, study_id: int) -> int:
        """Raises StudyNotFound."""

    # --- events and totals ----------------------------------------------------------------
    @abc.abstractmethod
    def events_after(
        self, study_id: int, after_id: int = 0, limit: int = 1000
    ) -> Sequence[EventRecord]:
        """The study's events with id > ``after_id``, in id order, at most ``limit``.
        Raises StudyNotFound."""

    @abc.abstractmethod
    def last_event_id(self, study_id: int | None = None) -> int:
        """The highest event id of the study (of all studies when None), 0 when none."""

    @abc.abstractmethod
    def ingested_after(self, after_id: int, limit: int = 5000) -> Sequence[IngestedResult]:
        """Result events of every study with id > ``after_id``, in id order."""

    @abc.abstractmethod
    def metric_series(
        self, study_id: int, trial_ids: Sequence[str] | None = None
    ) -> Sequence[tuple[str, int, Any]]:
        """Every result of the study (of the trials ``trial_ids`` only, when given) as
        (trial_id, iteration, value of the study's metric or None), by trial then
        iteration: the learning curves in one read. Raises StudyNotFound."""

    @abc.abstractmethod
    def status_counts(self) -> Mapping[str, int]:
        """How many studies are in each status (every status present, 0 when none)."""

    @abc.abstractmethod
    def trial_state_counts(self) -> Mapping[str, int]:
        """How many trials of all studies are in each state (every state present)."""

    # --- API tokens ---------------------------------------------------------------------
    @abc.abstractmethod
    def add_api_token(self, *, token_hash: str, principal: str, is_admin: bool) -> ApiTokenRecord:
        """Store a token's hash for ``principal``. Raises TokenExists for a hash already
        stored."""

    @abc.abstractmethod
    def find_api_token(self, token_hash: str) -> ApiTokenRecord | None:
        """The stored token with this hash, or None."""

    @abc.abstractmethod
    def list_api_tokens(self) -> Sequence[ApiTokenRecord]:
        """Every stored token, oldest first."""

    @abc.abstractmethod
    def delete_api_token(self, token_id: int) -> None:
        """Revoke a stored token. Raises TokenNotFound."""

    # --- lifecycle --------------------------------------------------------------------
    @abc.abstractmethod
    def ping(self) -> None:
        """Raises StoreUnavailable when the database cannot be reached."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""
