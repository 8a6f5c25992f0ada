"""The SQL study store: one StudyStore implementation for SQLite and PostgreSQL.

Every public method runs in one session of :meth:`SqlStudyStore._session`, which
commits, rolls back, and turns connection-level errors into StoreUnavailable. Writes
that touch a study's status, trials or results first lock the study's row
(``SELECT ... FOR UPDATE``; on SQLite the write transaction is ``BEGIN IMMEDIATE``), so
writers of one study take turns: trial numbers stay dense and counters are never lost.
Writes are batched: one ``SELECT ... IN`` for the batch's trials, one multi-row
``INSERT`` for new trials and one for results (``ON CONFLICT DO NOTHING ... RETURNING``
on the idempotency key), one ``executemany`` ``UPDATE`` for changed trials, and the
study's row: its result counter, trial counts per state, best trial and revision (see
totals). Reads are index range scans (see models for which index serves which read);
nothing scans a study's results, and reading a study never counts its trials.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    Engine,
    Select,
    Table,
    bindparam,
    delete,
    exc,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, sessionmaker

from service.store import eventlog
from service.store import rows as to_record
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
from service.store.coltypes import utcnow
from service.store.dberrors import unavailable_as_store_error
from service.store.engine import create_store_engine, writer
from service.store.errors import (
    InvalidTransition,
    StoreUnavailable,
    StudyExtended,
    StudyNotFound,
    TokenExists,
    TokenNotFound,
    TrialNotFound,
)
from service.store.migrate import upgrade
from service.store.models import ApiToken, Result, Study, Trial
from service.store.states import ALLOWED_STUDY_TRANSITIONS, StudyStatus, TrialState
from service.store.totals import COUNT_COLUMNS, TotalsChange, counts_of
from service.store.tracking import TrialStats, apply_results

STUDIES = cast(Table, Study.__table__)
TRIALS = cast(Table, Trial.__table__)
RESULTS = cast(Table, Result.__table__)
API_TOKENS = cast(Table, ApiToken.__table__)

MODES = ("min", "max")
IN_CHUNK = 500  # trial ids per SELECT ... IN (...)
_TRIAL_STATS_COLUMNS = (
    TRIALS.c.id,
    TRIALS.c.trial_id,
    TRIALS.c.state,
    TRIALS.c.num_results,
    TRIALS.c.last_iteration,
    TRIALS.c.last_value,
    TRIALS.c.best_value,
)


class SqlStudyStore(StudyStore):
    """StudyStore on a SQLAlchemy engine (SQLite or PostgreSQL). See :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {engine.dialect.name!r}")
        self._engine = engine
        self._reads = sessionmaker(bind=engine)
        self._writes = sessionmaker(bind=writer(engine))
        self._insert = (
            sqlite_dialect.insert if engine.dialect.name == "sqlite" else pg_dialect.insert
        )

    @classmethod
    def from_url(cls, url: str, *, migrate: bool = True) -> SqlStudyStore:
        """Create the engine for ``url`` and, unless ``migrate`` is false, upgrade the
        schema to the newest migration. Raises StoreUnavailable."""
        with unavailable_as_store_error():
            engine = _engine_or_unavailable(url)
            try:
                if migrate:
                    upgrade(engine)
            except BaseException:
                engine.dispose()
                raise
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextlib.contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error, and raise
        StoreUnavailable for connection-level database errors."""
        factory = self._writes if write else self._reads
        with unavailable_as_store_error(), factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    session.rollback()
                raise

    # --- studies -------------------------------------------------------------------
    def create_study(
        self, *, name: str, spec: Mapping[str, Any], metric: str, mode: str, owner: str = "local"
    ) -> StudyRecord:
        if mode not in MODES:
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        with self._session(write=True) as session:
            row = session.execute(
                insert(STUDIES)
                .values(
                    name=name,
                    owner=owner,
                    spec=dict(spec),
                    metric=metric,
                    mode=mode,
                    status=StudyStatus.PENDING.value,
                    num_results=0,
                    created_at=utcnow(),
                )
                .returning(*STUDIES.c)
            ).one()
            eventlog.append(session, [eventlog.study_event(row.id, row.status)])
            return to_record.study_record(row)

    def get_study(self, study_id: int, *, owner: str | None = None) -> StudyRecord:
        with self._session() as session:
            return to_record.study_record(_study_row(session, study_id, owner=owner))

    def summarize_study(self, study_id: int, *, owner: str | None = None) -> StudySummary:
        with self._session() as session:
            study = _study_row(session, study_id, owner=owner)
            best = _best_trial_row(session, study)
            return StudySummary(
                study=to_record.study_record(study),
                trial_counts=counts_of(study),
                num_results=study.num_results,
                best_trial=None if best is None else to_record.trial_record(best),
                revision=int(study.revision),
            )

    def list_studies(
        self,
        *,
        status: StudyStatus | None = None,
        owner: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        _check_paging(limit, offset)
        query = select(STUDIES)
        if status is not None:
            query = query.where(STUDIES.c.status == StudyStatus(status).value)
        if owner is not None:
            query = query.where(STUDIES.c.owner == owner)
        with self._session() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(query.order_by(STUDIES.c.id.desc()).limit(limit).offset(offset))
            items = [to_record.study_record(row) for row in rows]
        return Page(items=tuple(items), total=total, limit=limit, offset=offset)

    def transition_study(
        self,
        study_id: int,
        to: StudyStatus,
        *,
        error: str | None = None,
        if_extensions: int | None = None,
    ) -> StudyRecord:
        wanted = StudyStatus(to)
        with self._session(write=True) as session:
            row = _study_row(session, study_id, lock=True)
            if if_extensions is not None and (row.extensions or 0) != if_extensions:
                raise StudyExtended(study_id, row.extensions)
            current = StudyStatus(row.status)
            if current == wanted:
                return to_record.study_record(row)
            if wanted not in ALLOWED_STUDY_TRANSITIONS[current]:
                raise InvalidTransition(study_id, current.value, wanted.value)
            values: dict[str, Any] = {"status": wanted.value, "revision": STUDIES.c.revision + 1}
            if wanted == StudyStatus.RUNNING:
                values["started_at"] = utcnow()
            if wanted.is_terminal:
                values["finished_at"] = utcnow()
                values["error"] = error
            updated = session.execute(
                update(STUDIES)
                .where(STUDIES.c.id == study_id)
                .values(**values)
                .returning(*STUDIES.c)
            ).one()
            eventlog.append(session, [eventlog.study_event(study_id, wanted.value, error)])
            return to_record.study_record(updated)

    def extend_study(self, study_id: int, *, spec: Mapping[str, Any], note: str) -> StudyRecord:
        with self._session(write=True) as session:
            row = _study_row(session, study_id, lock=True)
            current = StudyStatus(row.status)
            if current == StudyStatus.FAILED:
                raise InvalidTransition(study_id, current.value, "extended")
            values: dict[str, Any] = {
                "spec": dict(spec),
                "extensions": STUDIES.c.extensions + 1,
                "revision": STUDIES.c.revision + 1,
            }
            status = current
            if current.is_terminal:  # reopened: the caller launches its next run
                status = StudyStatus.PENDING
                values.update(
                    status=status.value,
                    finished_at=None,
                    error=None,
                    ray_job_id=None,
                    ray_dashboard_url=None,
                )
            updated = session.execute(
                update(STUDIES)
                .where(STUDIES.c.id == study_id)
                .values(**values)
                .returning(*STUDIES.c)
            ).one()
            eventlog.append(session, [eventlog.study_event(study_id, status.value, note)])
            return to_record.study_record(updated)

    def end_segment(self, study_id: int, *, segment: int, seconds: float) -> StudyRecord:
        with self._session(write=True) as session:
            row = _study_row(session, study_id, lock=True)
            if (row.segments_done or 0) > segment:
                return to_record.study_record(row)  # recorded already (a retried call)
            updated = session.execute(
                update(STUDIES)
                .where(STUDIES.c.id == study_id)
                .values(
                    segments_done=segment + 1,
                    run_seconds=STUDIES.c.run_seconds + max(0.0, float(seconds)),
                    revision=STUDIES.c.revision + 1,
                )
                .returning(*STUDIES.c)
            ).one()
            return to_record.study_record(updated)

    def set_ray_job(self, study_id: int, *, job_id: str, dashboard_url: str | None) -> None:
        with self._session(write=True) as session:
            found = session.execute(
                update(STUDIES)
                .where(STUDIES.c.id == study_id)
                .values(
                    ray_job_id=job_id,
                    ray_dashboard_url=dashboard_url,
                    revision=STUDIES.c.revision + 1,
                )
                .returning(STUDIES.c.id)
            ).first()
            if found is None:
                raise StudyNotFound(study_id)

    def study_of_job(self, job_id: str) -> int | None:
        with self._session() as session:
            found = session.execute(
                select(STUDIES.c.id).where(STUDIES.c.ray_job_id == job_id).limit(1)
            ).first()
            return None if found is None else int(found[0])

    def restart_study(
        self,
        study_id: int,
        *,
        from_job_id: str,
        to_job_id: str,
        dashboard_url: str | None,
        reason: str,
    ) -> StudyRecord | None:
        with self._session(write=True) as session:
            row = _study_row(session, study_id, lock=True)
            if StudyStatus(row.status).is_terminal or row.ray_job_id != from_job_id:
                return None  # finished meanwhile, or another service restarted it first
            updated = session.execute(
                update(STUDIES)
                .where(STUDIES.c.id == study_id)
                .values(
                    ray_job_id=to_job_id,
                    ray_dashboard_url=dashboard_url,
                    restarts=STUDIES.c.restarts + 1,
                    revision=STUDIES.c.revision + 1,
                )
                .returning(*STUDIES.c)
            ).one()
            eventlog.append(session, [eventlog.study_event(study_id, row.status, reason)])
            return to_record.study_record(updated)

    def discard_trials(self, study_id: int, trial_ids: Sequence[str], *, note: str) -> int:
        with self._session(write=True) as session:
            totals = TotalsChange(_study_row(session, study_id, lock=True))
            if not trial_ids:
                return 0
            rows = list(
                _select_trials(
                    session,
                    study_id,
                    list(trial_ids),
                    TRIALS.c.id,
                    TRIALS.c.num_results,
                    TRIALS.c.state,
                    TRIALS.c.best_value,
                )
            )
            empty = [row.id for row in rows if not row.num_results]
            kept = [row.id for row in rows if row.num_results]
            if not rows:
                return 0
            for row in rows:
                if row.num_results:
                    totals.moved(row.state, TrialState.PRUNED.value, row.best_value)
                else:
                    totals.deleted(row.state)
            _update_study(session, study_id, totals)
            if empty:  # their events too: a reader would find no trial behind them
                session.execute(
                    delete(eventlog.EVENTS).where(
                        eventlog.EVENTS.c.study_id == study_id,
                        eventlog.EVENTS.c.trial_pk.in_(empty),
                    )
                )
                session.execute(delete(TRIALS).where(TRIALS.c.id.in_(empty)))
            if kept:
                session.execute(
                    update(TRIALS)
                    .where(TRIALS.c.id.in_(kept))
                    .values(state=TrialState.PRUNED.value, error=note, finished_at=utcnow())
                )
                eventlog.append(
                    session,
                    [
                        eventlog.trial_event(study_id, pk, TrialState.PRUNED.value, note)
                        for pk in kept
                    ],
                )
            return len(empty)

    def delete_study(self, study_id: int) -> None:
        with self._session(write=True) as session:
            row = _study_row(session, study_id, lock=True)
            status = StudyStatus(row.status)
            if not status.is_terminal:
                raise InvalidTransition(study_id, status.value, "DELETED")
            # Children first, in bulk; the ON DELETE CASCADE keys would do the same row
            # by row.
            session.execute(delete(RESULTS).where(RESULTS.c.study_id == study_id))
            session.execute(delete(eventlog.EVENTS).where(eventlog.EVENTS.c.study_id == study_id))
            session.execute(delete(TRIALS).where(TRIALS.c.study_id == study_id))
            session.execute(delete(STUDIES).where(STUDIES.c.id == study_id))

    # --- trials and results ---------------------------------------------------------
    def upsert_trials(self, study_id: int, updates: Sequence[TrialUpdate]) -> None:
        self.write_batch(study_id, updates)

    def add_results(self, study_id: int, results: Sequence[ResultWrite]) -> int:
        return self.write_batch(study_id, results)

    def write_batch(self, study_id: int, items: Sequence[TrialUpdate | ResultWrite]) -> int:
        with self._session(write=True) as session:
            study = _study_row(session, study_id, lock=True)
            totals = TotalsChange(study)
            events: list[dict[str, Any]] = []
            inserted = 0
            for run in runs_of(items):
                if isinstance(run[0], TrialUpdate):
                    updates = cast(list[TrialUpdate], run)
                    self._upsert_trials_in(session, study_id, updates, totals, events)
                else:
                    results = cast(list[ResultWrite], run)
                    inserted += self._add_results_in(session, study, results, totals, events)
            if events:  # something changed (every new result has its event)
                eventlog.append(session, events)
                _update_study(
                    session, study_id, totals, num_results=STUDIES.c.num_results + inserted
                )
            return inserted

    def _upsert_trials_in(
        self,
        session: Session,
        study_id: int,
        updates: Sequence[TrialUpdate],
        totals: TotalsChange,
        events: list[dict[str, Any]],
    ) -> None:
        """Create new trials (numbered in order) and apply state changes, in ``session``."""
        ids = list(dict.fromkeys(u.trial_id for u in updates))
        known = {
            row.trial_id: row
            for row in _select_trials(
                session,
                study_id,
                ids,
                TRIALS.c.id,
                TRIALS.c.trial_id,
                TRIALS.c.state,
                TRIALS.c.best_value,
            )
        }
        now = utcnow()
        new: dict[str, dict[str, Any]] = {}
        changed: dict[str, dict[str, Any]] = {}
        for upd in updates:
            state = TrialState(upd.state)
            if upd.trial_id in new:
                _apply_update(new[upd.trial_id], upd, state, now)
            elif upd.trial_id in known:
                values = changed.setdefault(upd.trial_id, {"state": known[upd.trial_id].state})
                _apply_update(values, upd, state, now)
            else:
                new[upd.trial_id] = _new_trial(study_id, upd.trial_id, state, upd.config, now)
                new[upd.trial_id]["error"] = upd.error
                new[upd.trial_id]["reason"] = upd.reason
        if new:
            _number_trials(session, study_id, new.values())
            created = session.execute(
                insert(TRIALS).returning(TRIALS.c.id, TRIALS.c.trial_id), list(new.values())
            ).all()
            pks = {row.trial_id: row.id for row in created}
            events.extend(
                eventlog.trial_event(study_id, pks[t], v["state"], v["error"])
                for t, v in new.items()
            )
            for values in new.values():
                totals.created(values["state"])
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for trial_id, values in changed.items():
            row = known[trial_id]
            if values == {"state": row.state}:
                continue  # nothing changed
            totals.moved(row.state, values["state"], row.best_value)
            events.append(
                eventlog.trial_event(study_id, row.id, values["state"], values.get("error"))
            )
            params = {f"b_{key}": value for key, value in values.items()}
            params["b_pk"] = row.id
            groups.setdefault(tuple(sorted(values)), []).append(params)
        for columns, params_list in groups.items():
            stmt = (
                update(TRIALS)
                .where(TRIALS.c.id == bindparam("b_pk"))
                .values({column: bindparam(f"b_{column}") for column in columns})
            )
            session.execute(stmt, params_list)

    def _add_results_in(
        self,
        session: Session,
        study: Row[Any],
        results: Sequence[ResultWrite],
        totals: TotalsChange,
        events: list[dict[str, Any]],
    ) -> int:
        """Insert results idempotently, in ``session``; returns how many were new."""
        study_id = study.id
        batch: dict[tuple[str, int], ResultWrite] = {}
        for result in results:  # a key repeated inside the batch: the first one wins
            batch.setdefault((result.trial_id, int(result.iteration)), result)
        trials = self._trials_for_results(session, study_id, [k[0] for k in batch], events, totals)
        now = utcnow()
        rows = [
            {
                "study_id": study_id,
                "trial_pk": trials[trial_id].id,
                "iteration": iteration,
                "metrics": dict(result.metrics),
                "reported_at": result.reported_at,
                "stored_at": now,
            }
            for (trial_id, iteration), result in batch.items()
        ]
        stmt = (
            self._insert(RESULTS)
            .on_conflict_do_nothing(index_elements=["study_id", "trial_pk", "iteration"])
            .returning(RESULTS.c.trial_pk, RESULTS.c.iteration)
        )
        inserted = session.execute(stmt, rows).all()
        if not inserted:
            return 0
        by_pk = {row.id: (trial_id, row) for trial_id, row in trials.items()}
        fresh: dict[int, list[tuple[int, object]]] = {}
        for trial_pk, iteration in inserted:
            trial_id = by_pk[trial_pk][0]
            value = batch[(trial_id, iteration)].metrics.get(study.metric)
            fresh.setdefault(trial_pk, []).append((iteration, value))
        params = []
        for trial_pk, new_rows in fresh.items():
            row = by_pk[trial_pk][1]
            stats = apply_results(
                TrialStats(row.num_results, row.last_iteration, row.last_value, row.best_value),
                new_rows,
                mode=study.mode,
            )
            state = TrialState.RUNNING.value if row.state == TrialState.PENDING.value else row.state
            if state != row.state:
                events.append(eventlog.trial_event(study_id, trial_pk, state, None))
                totals.moved(row.state, state)
            totals.trial_best(trial_pk, stats.best_value)
            params.append(
                {
                    "b_pk": trial_pk,
                    "b_state": state,
                    "b_num_results": stats.num_results,
                    "b_last_iteration": stats.last_iteration,
                    "b_last_value": stats.last_value,
                    "b_best_value": stats.best_value,
                }
            )
        session.execute(_UPDATE_TRIAL_STATS, params)
        events.extend(eventlog.result_event(study_id, pk, it) for pk, it in inserted)
        return len(inserted)

    def _trials_for_results(
        self,
        session: Session,
        study_id: int,
        trial_ids: Iterable[str],
        events: list[dict[str, Any]],
        totals: TotalsChange,
    ) -> dict[str, Any]:
        """The batch's trials by trial id; unknown ones are created RUNNING, empty config."""
        ids = list(dict.fromkeys(trial_ids))
        found: dict[str, Any] = {
            row.trial_id: row
            for row in _select_trials(session, study_id, ids, *_TRIAL_STATS_COLUMNS)
        }
        missing = [trial_id for trial_id in ids if trial_id not in found]
        if missing:
            now = utcnow()
            new = [_new_trial(study_id, t, TrialState.RUNNING, None, now) for t in missing]
            _number_trials(session, study_id, new)
            for row in session.execute(insert(TRIALS).returning(*_TRIAL_STATS_COLUMNS), new):
                found[row.trial_id] = row
                events.append(eventlog.trial_event(study_id, row.id, row.state, None))
                totals.created(row.state)
        return found

    def list_trials(
        self,
        study_id: int,
        *,
        state: TrialState | None = None,
        limit: int = 100,
        offset: int = 0,
        order: str = "number",
        after: int | None = None,
    ) -> Page:
        _check_paging(limit, offset)
        if order not in ("number", "best"):
            raise ValueError(f"order must be 'number' or 'best', not {order!r}")
        if after is not None and order != "number":
            raise ValueError("after (a trial number) pages only in number order")
        with self._session() as session:
            study = _study_row(session, study_id)
            counts = counts_of(study)
            where = [TRIALS.c.study_id == study_id]
            if state is not None:
                where.append(TRIALS.c.state == TrialState(state).value)
                total = counts[TrialState(state).value]
            else:
                total = sum(counts.values())
            if order == "number":
                rows = _trials_by_number(session, study_id, where, total, limit, offset, after)
            else:
                rows = _trials_by_best(session, where, study.mode, limit, offset)
            items = tuple(to_record.trial_record(row) for row in rows)
        return Page(items=items, total=total, limit=limit, offset=offset)

    def trials_by_numbers(self, study_id: int, numbers: Sequence[int]) -> Sequence[TrialRecord]:
        wanted = sorted(set(numbers))
        with self._session() as session:
            _study_row(session, study_id, STUDIES.c.id)
            rows: list[Row[Any]] = []
            for start in range(0, len(wanted), IN_CHUNK):
                rows += session.execute(
                    select(TRIALS).where(
                        TRIALS.c.study_id == study_id,
                        TRIALS.c.number.in_(wanted[start : start + IN_CHUNK]),
                    )
                ).all()
            rows.sort(key=lambda row: row.number)
            return tuple(to_record.trial_record(row) for row in rows)

    def best_steps(self, study_id: int) -> Sequence[tuple[int, float]]:
        with self._session() as session:
            steps = _study_row(session, study_id, STUDIES.c.best_steps).best_steps or []
            return tuple((int(finished), float(value)) for finished, value in steps)

    def revisions(self, study_ids: Sequence[int]) -> Mapping[int, int]:
        wanted = sorted(set(study_ids))
        found: dict[int, int] = {}
        with self._session() as session:
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                for study_id, revision in session.execute(
                    select(STUDIES.c.id, STUDIES.c.revision).where(STUDIES.c.id.in_(chunk))
                ):
                    found[int(study_id)] = int(revision)
        return found

    def get_trial(self, study_id: int, trial_id: str) -> TrialRecord:
        with self._session() as session:
            row = _trial_row(session, study_id, trial_id)
            return to_record.trial_record(row)

    def get_results(self, study_id: int, trial_id: str) -> Sequence[ResultRecord]:
        with self._session() as session:
            trial = _trial_row(session, study_id, trial_id, TRIALS.c.id)
            rows = session.execute(
                select(RESULTS)
                .where(RESULTS.c.study_id == study_id, RESULTS.c.trial_pk == trial.id)
                .order_by(RESULTS.c.iteration)
            )
            return tuple(to_record.result_record(row, trial_id=trial_id) for row in rows)

    def best_trial(self, study_id: int) -> TrialRecord | None:
        with self._session() as session:
            study = _study_row(session, study_id, STUDIES.c.id, STUDIES.c.best_trial_pk)
            row = _best_trial_row(session, study)
            return None if row is None else to_record.trial_record(row)

    def count_results(self, study_id: int) -> int:
        with self._session() as session:
            return int(_study_row(session, study_id, STUDIES.c.num_results).num_results)

    # --- events and totals ----------------------------------------------------------------
    def events_after(
        self, study_id: int, after_id: int = 0, limit: int = 1000
    ) -> Sequence[EventRecord]:
        _check_paging(limit, after_id)
        with self._session() as session:
            _study_row(session, study_id, STUDIES.c.id)
            return tuple(eventlog.read_after(session, study_id, after_id, limit))

    def last_event_id(self, study_id: int | None = None) -> int:
        with self._session() as session:
            return eventlog.last_id(session, study_id)

    def ingested_after(self, after_id: int, limit: int = 5000) -> Sequence[IngestedResult]:
        with self._session() as session:
            return eventlog.ingested_after(session, after_id, limit)

    def metric_series(
        self, study_id: int, trial_ids: Sequence[str] | None = None
    ) -> Sequence[tuple[str, int, Any]]:
        with self._session() as session:
            metric = _study_row(session, study_id, STUDIES.c.metric).metric
            # PostgreSQL picks the value out of the document (``->`` on a json column
            # returns its text as stored: no rounding), so only the value is decoded here.
            # On SQLite each whole document is decoded: its JSON_EXTRACT rounds floats to
            # 15 digits.
            on_postgres = self._engine.dialect.name == "postgresql"
            value = RESULTS.c.metrics[metric] if on_postgres else RESULTS.c.metrics
            query = (
                select(TRIALS.c.trial_id, RESULTS.c.iteration, value.label("value"))
                .select_from(RESULTS)
                .join(TRIALS, TRIALS.c.id == RESULTS.c.trial_pk)
                .where(RESULTS.c.study_id == study_id)
                .order_by(RESULTS.c.trial_pk, RESULTS.c.iteration)
            )
            if trial_ids is None:
                rows = list(session.execute(query))
            else:
                # The trials' ids first, then their results by (study_id, trial_pk): a
                # filter on trials.trial_id alone let SQLite walk the study's every result.
                pks = [
                    row.id
                    for row in _select_trials(session, study_id, list(trial_ids), TRIALS.c.id)
                ]
                rows = []
                for start in range(0, len(pks), IN_CHUNK):
                    chunk = sorted(pks[start : start + IN_CHUNK])
                    rows += session.execute(query.where(RESULTS.c.trial_pk.in_(chunk))).all()
            if on_postgres:
                return tuple((r.trial_id, r.iteration, r.value) for r in rows)
            return tuple((r.trial_id, r.iteration, (r.value or {}).get(metric)) for r in rows)

    def status_counts(self) -> Mapping[str, int]:
        return self._count_by(STUDIES.c.status, [status.value for status in StudyStatus])

    def trial_state_counts(self) -> Mapping[str, int]:
        """Sums of the studies' own counts: never a scan of every trial."""
        columns = [func.coalesce(func.sum(STUDIES.c[c]), 0) for c in COUNT_COLUMNS.values()]
        with self._session() as session:
            sums = session.execute(select(*columns)).one()
        return {state: int(total) for state, total in zip(COUNT_COLUMNS, sums, strict=True)}

    def _count_by(self, column: Any, keys: list[str]) -> dict[str, int]:
        """Rows per value of ``column`` over all studies, every key present (0 if none)."""
        counts = dict.fromkeys(keys, 0)
        with self._session() as session:
            for value, count in session.execute(select(column, func.count()).group_by(column)):
                counts[value] = int(count)
        return counts

    # --- API tokens ---------------------------------------------------------------------
    def add_api_token(self, *, token_hash: str, principal: str, is_admin: bool) -> ApiTokenRecord:
        try:
            with self._session(write=True) as session:
                row = session.execute(
                    insert(API_TOKENS)
                    .values(
                        token_hash=token_hash,
                        principal=principal,
                        is_admin=bool(is_admin),
                        created_at=utcnow(),
                    )
                    .returning(*API_TOKENS.c)
                ).one()
                return to_record.api_token_record(row)
        except exc.IntegrityError as error:
            raise TokenExists("a token with the same hash is already stored") from error

    def find_api_token(self, token_hash: str) -> ApiTokenRecord | None:
        with self._session() as session:
            row = session.execute(
                select(API_TOKENS).where(API_TOKENS.c.token_hash == token_hash)
            ).first()
            return None if row is None else to_record.api_token_record(row)

    def list_api_tokens(self) -> Sequence[ApiTokenRecord]:
        with self._session() as session:
            rows = session.execute(select(API_TOKENS).order_by(API_TOKENS.c.id))
            return tuple(to_record.api_token_record(row) for row in rows)

    def delete_api_token(self, token_id: int) -> None:
        with self._session(write=True) as session:
            gone = session.execute(
                delete(API_TOKENS).where(API_TOKENS.c.id == token_id).returning(API_TOKENS.c.id)
            ).first()
            if gone is None:
                raise TokenNotFound(token_id)

    # --- lifecycle --------------------------------------------------------------------
    def ping(self) -> None:
        with self._session() as session:
            session.execute(text("SELECT 1"))

    def close(self) -> None:
        self._engine.dispose()


_UPDATE_TRIAL_STATS = (
    update(TRIALS)
    .where(TRIALS.c.id == bindparam("b_pk"))
    .values(
        state=bindparam("b_state"),
        num_results=bindparam("b_num_results"),
        last_iteration=bindparam("b_last_iteration"),
        last_value=bindparam("b_last_value"),
        best_value=bindparam("b_best_value"),
    )
)


def _engine_or_unavailable(url: str) -> Engine:
    try:
        return create_store_engine(url)
    except OSError as error:
        raise StoreUnavailable(f"cannot create the database's directory: {error}") from error


def _check_paging(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")


def _study_row(
    session: Session, study_id: int, *columns: Any, lock: bool = False, owner: str | None = None
) -> Row[Any]:
    """The study's row; StudyNotFound when there is none, or when ``owner`` is given and
    the study is someone else's (indistinguishable on purpose)."""
    query: Select[Any] = select(*columns) if columns else select(STUDIES)
    query = query.where(STUDIES.c.id == study_id)
    if owner is not None:
        query = query.where(STUDIES.c.owner == owner)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        raise StudyNotFound(study_id)
    return row


def _trial_row(session: Session, study_id: int, trial_id: str, *columns: Any) -> Row[Any]:
    query: Select[Any] = select(*columns) if columns else select(TRIALS)
    row = session.execute(
        query.where(TRIALS.c.study_id == study_id, TRIALS.c.trial_id == trial_id)
    ).first()
    if row is None:
        _study_row(session, study_id, STUDIES.c.id)
        raise TrialNotFound(study_id, trial_id)
    return row


def _select_trials(
    session: Session, study_id: int, trial_ids: Sequence[str], *columns: Any
) -> Iterator[Row[Any]]:
    for start in range(0, len(trial_ids), IN_CHUNK):
        chunk = trial_ids[start : start + IN_CHUNK]
        yield from session.execute(
            select(*columns).where(TRIALS.c.study_id == study_id, TRIALS.c.trial_id.in_(chunk))
        )


def _new_trial(
    study_id: int,
    trial_id: str,
    state: TrialState,
    config: Mapping[str, Any] | None,
    now: Any,
) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "trial_id": trial_id,
        "number": -1,  # set by _number_trials
        "config": dict(config or {}),
        "state": state.value,
        "error": None,
        "reason": None,
        "last_value": None,
        "best_value": None,
        "num_results": 0,
        "last_iteration": None,
        "created_at": now,
        "finished_at": now if state.is_finished else None,
    }


def _number_trials(session: Session, study_id: int, new: Iterable[dict[str, Any]]) -> None:
    """Number new trials after the study's last one. Callers hold the study's row lock."""
    last = session.scalar(select(func.max(TRIALS.c.number)).where(TRIALS.c.study_id == study_id))
    number = -1 if last is None else last
    for values in new:
        number += 1
        values["number"] = number


def _apply_update(values: dict[str, Any], upd: TrialUpdate, state: TrialState, now: Any) -> None:
    """Apply one runner update to a trial's pending column values (new or changed)."""
    current = TrialState(values["state"])
    if current.is_finished and not state.is_finished:
        return  # a late PENDING/RUNNING for a finished trial: ignored
    if state != current:
        values["state"] = state.value
        if state.is_finished and not current.is_finished:
            values["finished_at"] = now
    if upd.error is not None:
        values["error"] = upd.error
    if upd.reason is not None:
        values["reason"] = upd.reason
    if upd.config is not None:
        values["config"] = dict(upd.config)


def _update_study(session: Session, study_id: int, totals: TotalsChange, **values: Any) -> None:
    """Apply a write's totals (and ``values``) to the study's row; bumps its revision."""
    session.execute(
        update(STUDIES).where(STUDIES.c.id == study_id).values(**totals.values(STUDIES), **values)
    )


def _best_trial_row(session: Session, study: Row[Any]) -> Row[Any] | None:
    """The study's best trial, which its row names (kept by the writers; see totals)."""
    if study.best_trial_pk is None:
        return None
    return session.execute(
        select(TRIALS).where(TRIALS.c.id == study.best_trial_pk, TRIALS.c.study_id == study.id)
    ).first()


def _trials_by_number(
    session: Session,
    study_id: int,
    where: list[Any],
    total: int,
    limit: int,
    offset: int,
    after: int | None,
) -> list[Row[Any]]:
    """A page in number order. ``after`` (keyset) starts after that trial number. A plain
    ``offset`` over all trials becomes a keyset too while numbers are dense (0..n-1, no
    trial discarded): the trial at offset k is then number k, one index seek away where
    ``OFFSET k`` walks k index entries."""
    query = select(TRIALS).where(*where).order_by(TRIALS.c.number).limit(limit)
    if after is not None:
        return list(session.execute(query.where(TRIALS.c.number > after).offset(offset)))
    if offset and len(where) == 1:
        last = session.scalar(
            select(func.max(TRIALS.c.number)).where(TRIALS.c.study_id == study_id)
        )
        if last is not None and int(last) + 1 == total:
            return list(session.execute(query.where(TRIALS.c.number >= offset)))
    return list(session.execute(query.offset(offset)))


def _trials_by_best(
    session: Session, where: list[Any], mode: str, limit: int, offset: int
) -> list[Row[Any]]:
    """A page of trials, best first, trials without a value last (ties and the valueless
    part in number order). Two queries instead of one ``NULLS LAST`` sort, so each part
    walks an index. The valueless part is ordered by id, which is number order within a
    study (both follow insertion under the study's row lock) but lets SQLite read it in
    order from the best_value indexes, whose entries end with the row id."""
    valued = [*where, TRIALS.c.best_value.is_not(None)]
    key = TRIALS.c.best_value.asc() if mode == "min" else TRIALS.c.best_value.desc()
    rows = list(
        session.execute(
            select(TRIALS).where(*valued).order_by(key, TRIALS.c.number).limit(limit).offset(offset)
        )
    )
    if len(rows) >= limit:
        return rows
    num_valued = session.scalar(select(func.count()).select_from(TRIALS).where(*valued)) or 0
    rest = session.execute(
        select(TRIALS)
        .where(*where, TRIALS.c.best_value.is_(None))
        .order_by(TRIALS.c.id)
        .limit(limit - len(rows))
        .offset(max(0, offset - num_valued))
    )
    return rows + list(rest)
