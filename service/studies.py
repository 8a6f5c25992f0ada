"""Study use cases: create and launch, stop, delete, keep studies in step with Ray jobs."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from search_spaces import InvalidSpec, parse_space
from service.best import BestTrial, best_trial_export
from service.errors import CannotExtend, LaunchError, RayUnavailable
from service.extension import ExtendRequest, check_warm_start, extended_spec
from service.launcher import JobState, RayJobLauncher, job_id_for
from service.spec import spec_from_mapping
from service.store import (
    InvalidTransition,
    StudyNotFound,
    StudyRecord,
    StudyStatus,
    StudyStore,
    TrialState,
    TrialUpdate,
)
from service.validation import ValidatedStudy, validate_study
from service.warm_runners import WarmRunnerPool

log = logging.getLogger(__name__)


def trial_budget(spec: Mapping[str, Any]) -> int:
    """How many trials a stored spec runs at most (a grid runs each point num_samples times)."""
    num_samples = int(spec.get("num_samples") or 1)
    space = spec.get("search_space")
    if not space:
        return num_samples
    algorithm = (spec.get("algorithm") or {}).get("name", "random")
    if algorithm not in ("random", "grid"):
        return num_samples
    try:
        grid = parse_space(space).grid_size(algorithm)
    except InvalidSpec:
        return num_samples
    return (grid or 1) * num_samples


def close_open_trials(
    store: StudyStore, study_id: int, state: TrialState, error: str | None = None
) -> None:
    """Trials still PENDING or RUNNING when a study's run ends will not run again."""
    updates = [
        TrialUpdate(trial.trial_id, state, error=error)
        for open_state in (TrialState.PENDING, TrialState.RUNNING)
        for trial in store.list_trials(study_id, state=open_state, limit=100_000).items
    ]
    if updates:
        store.upsert_trials(study_id, updates)


class StudyService:
    def __init__(
        self,
        store: StudyStore,
        launcher: RayJobLauncher,
        *,
        validate_capacity: bool = True,
        warm_runners: WarmRunnerPool | None = None,
    ):
        self.store = store
        self.launcher = launcher
        self.validate_capacity = validate_capacity
        self.warm_runners = warm_runners

    def validate(self, document: Mapping[str, Any], owner: str | None = None) -> ValidatedStudy:
        """Every check before anything is stored. Raises InvalidSpec, RayUnavailable.
        ``owner``: whose studies ``warm_start_from`` may name (None: anyone's)."""
        spec = spec_from_mapping(dict(document))
        capacity = self.launcher.capacity() if self.validate_capacity else None
        study = validate_study(spec, capacity)
        if spec.warm_start_from is not None:
            try:
                source: StudyRecord | None = self.store.get_study(spec.warm_start_from, owner=owner)
            except StudyNotFound:
                source = None
            check_warm_start(study, source)
        return study

    def create(self, document: Mapping[str, Any], owner: str = "local") -> StudyRecord:
        """Validate, store and launch a study. Raises InvalidSpec, RayUnavailable, LaunchError
        (the study is then stored as FAILED with the reason)."""
        study = self.validate(document, owner)
        if not self.validate_capacity:
            # Nothing asked Ray yet: a cluster that is away or refuses our token must not
            # leave a stored study behind. Raises RayUnavailable.
            self.launcher.ping()
        record = self.store.create_study(
            name=study.spec.name,
            spec=study.spec.model_dump(mode="json"),
            metric=study.metric,
            mode=study.mode,
            owner=owner,
        )
        try:
            job_id = self._warm_runner() or self.launcher.submit(record.id, record.name)
        except Exception as error:
            self.store.transition_study(
                record.id, StudyStatus.FAILED, error=f"launch failed: {error}"
            )
            raise LaunchError(str(error)) from error
        # For a warm runner this is the hand-over: it polls the store for its job id.
        self.store.set_ray_job(
            record.id, job_id=job_id, dashboard_url=self.launcher.job_url(job_id)
        )
        return self.store.get_study(record.id)

    def _warm_runner(self) -> str | None:
        if self.warm_runners is None:
            return None
        job_id = self.warm_runners.take()
        if job_id is not None:
            self.warm_runners.refill_in_background()
        return job_id

    def stop(self, study_id: int) -> StudyRecord:
        """Stop a pending or running study; its running trials end. Raises StudyNotFound,
        InvalidTransition (already finished)."""
        current = self.store.get_study(study_id)
        if current.status.is_terminal:  # stopping twice is a conflict, not a no-op
            raise InvalidTransition(study_id, current.status.value, StudyStatus.STOPPED.value)
        record = self.store.transition_study(study_id, StudyStatus.STOPPED)
        if record.ray_job_id:
            try:
                self.launcher.stop(record.ray_job_id)
            except Exception as error:  # the status is already STOPPED; the monitor retries
                log.warning("could not stop Ray job %s: %s", record.ray_job_id, error)
        # Its running trials end now, not when (or whether) the stopped runner gets to it;
        # a late RUNNING from the runner cannot reopen a finished trial.
        close_open_trials(self.store, study_id, TrialState.PRUNED, "the study was stopped")
        return record

    def extend(self, study_id: int, request: ExtendRequest) -> StudyRecord:
        """Raise a study's num_samples and/or time_budget_s (new totals). A running study
        goes on with them when its current run ends; a finished (COMPLETED or STOPPED)
        one runs again, its searcher warm-started from everything it did. Raises
        InvalidSpec, CannotExtend, StudyNotFound, RayUnavailable, LaunchError."""
        record = self.store.get_study(study_id)
        trials = sum(self.store.summarize_study(study_id).trial_counts.values())
        spec = extended_spec(record, request, trials)
        validate_study(spec)  # the spec stays valid (it was, and only targets changed)
        if record.status.is_terminal:
            # It will need a new Ray job: do not reopen it when Ray is away.
            self.launcher.ping()
        what = ", ".join(
            f"{name} {before} -> {after}"
            for name, before, after in (
                ("num_samples", record.spec.get("num_samples"), spec.num_samples),
                (
                    "time_budget_s",
                    (record.spec.get("stop") or {}).get("time_budget_s"),
                    spec.stop.time_budget_s,
                ),
            )
            if before != after
        )
        try:
            extended = self.store.extend_study(
                study_id, spec=spec.model_dump(mode="json"), note=f"extended: {what}"
            )
        except InvalidTransition as error:
            raise CannotExtend(str(error)) from error
        if extended.status == StudyStatus.PENDING and extended.ray_job_id is None:
            try:
                self._launch(extended)
            except Exception as error:
                self.store.transition_study(
                    study_id, StudyStatus.FAILED, error=f"launch failed: {error}"
                )
                raise LaunchError(str(error)) from error
        return self.store.get_study(study_id)

    def best(self, study_id: int) -> BestTrial:
        """The study's best trial as a config to reuse. Raises StudyNotFound, NoBestTrial."""
        return best_trial_export(self.store, study_id)

    def delete(self, study_id: int) -> None:
        """Delete a finished study. Raises StudyNotFound, InvalidTransition."""
        self.store.delete_study(study_id)

    def reconcile(self, *, submit_unlaunched_before: dt.datetime | None = None) -> None:
        """Bring unfinished studies in line with their Ray jobs (called periodically, and
        once when the service starts): a job still running is left alone (its runner
        writes to the store itself); a job that died without recording an outcome is
        resubmitted and resumes (``stop.max_restarts`` times), then the study FAILS.

        ``submit_unlaunched_before``: also launch PENDING studies created before this
        time that have no Ray job (the service died between storing and submitting)."""
        for status in (StudyStatus.PENDING, StudyStatus.RUNNING):
            for record in self.store.list_studies(status=status, limit=10_000).items:
                try:
                    if record.ray_job_id:
                        self._reconcile_one(record)
                    elif (
                        submit_unlaunched_before is not None
                        and record.created_at < submit_unlaunched_before
                    ):
                        self._launch(record)
                except RayUnavailable:
                    raise  # nothing can be decided without Ray: the next round retries
                except Exception as error:  # one study's trouble must not block the others
                    log.warning("could not reconcile study %s: %s", record.id, error)

    def _launch(self, record: StudyRecord) -> None:
        job_id = self.launcher.submit(
            record.id, record.name, attempt=record.restarts, extension=record.extensions
        )
        self.store.set_ray_job(
            record.id, job_id=job_id, dashboard_url=self.launcher.job_url(job_id)
        )

    def _reconcile_one(self, record: StudyRecord) -> None:
        job = self.launcher.info(record.ray_job_id or "")
        if not job.state.is_terminal:
            return
        current = self.store.get_study(record.id)
        if current.status.is_terminal or current.ray_job_id != record.ray_job_id:
            return  # the runner recorded its outcome, or the study was restarted meanwhile
        if job.state == JobState.STOPPED:
            # Someone stopped the job outside this service (`ray job stop`): the study stops.
            with contextlib.suppress(InvalidTransition):
                self.store.transition_study(
                    record.id, StudyStatus.STOPPED, error="its Ray job was stopped"
                )
                close_open_trials(self.store, record.id, TrialState.PRUNED)
            return
        # The job ended but the runner did not record an outcome: its driver died.
        reason = {
            JobState.SUCCEEDED: "the study's Ray job ended without recording an outcome",
            JobState.MISSING: "the study's Ray job is gone from the cluster",
        }.get(job.state, f"the study's Ray job {job.state.value.lower()}: {job.message or ''}")
        max_restarts = int((current.spec.get("stop") or {}).get("max_restarts", 0))
        if current.restarts < max_restarts:
            self._restart(current, reason, max_restarts)
            return
        logs = self.launcher.logs_tail(job.job_id)
        error = f"{reason} (after {current.restarts} restarts)\n{logs}".strip()
        try:
            self.store.transition_study(record.id, StudyStatus.FAILED, error=error)
        except InvalidTransition:
            return
        close_open_trials(self.store, record.id, TrialState.ERROR, "the study's Ray job ended")

    def _restart(self, record: StudyRecord, reason: str, max_restarts: int) -> None:
        """Resubmit a study whose job died; its runner resumes Tune's saved experiment."""
        attempt = record.restarts + 1
        job_id = job_id_for(record.id, attempt, record.extensions)
        claimed = self.store.restart_study(
            record.id,
            from_job_id=record.ray_job_id or "",
            to_job_id=job_id,
            dashboard_url=self.launcher.job_url(job_id),
            reason=f"restart {attempt} of {max_restarts}: {reason}",
        )
        if claimed is None:
            return  # finished meanwhile, or another service restarted it
        log.warning("study %s: %s; resubmitting as %s", record.id, reason, job_id)
        try:
            self.launcher.submit(
                record.id, record.name, attempt=attempt, extension=record.extensions
            )
        except LaunchError as error:
            if "already exists" not in str(error):
                # The next round finds the job missing and restarts again (if allowed).
                log.warning("study %s: resubmitting failed: %s", record.id, error)
