"""Entrypoint of a study's Ray job: ``python -m service.runner STUDY_ID``."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from types import FrameType
from typing import TYPE_CHECKING

from service.runner.store_retry import call_with_retry
from service.runner.writer import replay_spill_files
from service.settings import get_settings
from service.store import (
    InvalidTransition,
    StudyExtended,
    StudyNotFound,
    StudyRecord,
    StudyStatus,
    StudyStore,
    TrialState,
    open_store,
)
from service.studies import close_open_trials
from service.warm_runners import RUNNER_IDLE_LIMIT_S

if TYPE_CHECKING:
    from ray import tune

    from service.runner.segments import SegmentPlan
    from service.runner.writer import BatchingStoreWriter
    from service.validation import ClusterCapacity, ValidatedStudy

log = logging.getLogger("service.runner")


def _stop_gracefully_on_sigterm() -> None:
    """Ray's job stop sends SIGTERM; Tune stops its trials cleanly on SIGINT."""

    def forward(signum: int, frame: FrameType | None) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)


# Tune saves its experiment state (trials, searcher) every 10 s by default; a runner
# resumed after its driver died redoes what happened since. Save more often.
EXPERIMENT_SAVE_PERIOD_ENV = "TUNE_GLOBAL_CHECKPOINT_S"
EXPERIMENT_SAVE_PERIOD_S = "2"
# How often a warm runner asks the store whether a study was given its job.
WARM_POLL_S = 0.1
LOST_TRIAL_NOTE = (
    "started by a run of this study whose driver died before Tune saved it; "
    "its results are kept, the resumed run did not continue it"
)


def _finish(
    store: StudyStore,
    study_id: int,
    status: StudyStatus,
    error: str | None = None,
    if_extensions: int | None = None,
) -> None:
    try:
        call_with_retry(
            store.transition_study, study_id, status, error=error, if_extensions=if_extensions
        )
    except InvalidTransition as problem:
        # Someone else ended the study first (e.g. a user stopped it); theirs stands.
        log.info("study %s not marked %s: %s", study_id, status.value, problem)


def _discard_lost_trials(store: StudyStore, study_id: int, known: set[str]) -> None:
    """Trials in the store that the restored experiment never heard of."""
    call_with_retry(_discard_lost_trials_once, store, study_id, known)


def _discard_lost_trials_once(store: StudyStore, study_id: int, known: set[str]) -> None:
    lost = [
        trial.trial_id
        for trial in store.list_trials(study_id, limit=100_000).items
        if trial.trial_id not in known and not trial.state.is_finished
    ]
    if lost:
        deleted = store.discard_trials(study_id, lost, note=LOST_TRIAL_NOTE)
        log.info(
            "study %s: %d trials lost with the last driver (%d empty, deleted)",
            study_id,
            len(lost),
            deleted,
        )


def run_warm(job_id: str) -> int:
    """A warm runner (service.warm_runners): import and connect everything a study's run
    needs, then wait until a study is given this Ray job, and run it. Exits after
    ``RUNNER_IDLE_LIMIT_S`` without one."""
    import ray

    # What run_study imports on its way to Tune's first trial, imported before any study
    # waits for it.
    import service.runner.callback
    import service.runner.tuner_builder
    import service.runner.writer  # noqa: F401

    store = call_with_retry(open_store, get_settings().resolved_database_url)
    ray.init(log_to_driver=False)
    idle_until = time.monotonic() + RUNNER_IDLE_LIMIT_S
    log.info("warm runner %s: waiting for a study", job_id)
    while (study_id := call_with_retry(store.study_of_job, job_id)) is None:
        if time.monotonic() > idle_until:
            log.info("warm runner %s: no study came in %.0f s", job_id, RUNNER_IDLE_LIMIT_S)
            return 0
        time.sleep(WARM_POLL_S)
    log.info("warm runner %s: running study %s", job_id, study_id)
    return run_study(study_id, store)


def run_study(study_id: int, store: StudyStore | None = None) -> int:
    import ray

    from service.runner.callback import RunnerContext, use_context
    from service.runner.writer import BatchingStoreWriter
    from service.validation import ClusterCapacity

    settings = get_settings()
    if store is None:
        store = call_with_retry(open_store, settings.resolved_database_url)
    record = call_with_retry(store.get_study, study_id)
    if record.status.is_terminal:
        log.info("study %s is already %s; nothing to run", study_id, record.status.value)
        return 0
    writer: BatchingStoreWriter | None = None
    spill_dir = settings.home / "spill"
    try:
        if not ray.is_initialized():  # a warm runner connected before its study came
            ray.init(log_to_driver=False)
        resources = ray.cluster_resources()
        capacity = ClusterCapacity(cpus=resources.get("CPU", 0.0), gpus=resources.get("GPU", 0.0))
        call_with_retry(store.transition_study, study_id, StudyStatus.RUNNING)
        # Results an earlier runner of this study could not write before it ended.
        replay_spill_files(store, study_id, spill_dir)
        writer = BatchingStoreWriter(store, study_id, spill_dir=spill_dir)
        use_context(
            RunnerContext(
                writer, on_restored=lambda known: _discard_lost_trials(store, study_id, known)
            )
        )
        _stop_gracefully_on_sigterm()
        outcome = _run_segments(store, study_id, writer, capacity)
    except BaseException as error:  # the study failed: record why, then exit non-zero
        text = "".join(traceback.format_exception(error))
        if writer is not None:
            writer.close()
            # What the writer could not write in time (the database away at the end).
            replay_spill_files(store, study_id, spill_dir)
        call_with_retry(close_open_trials, store, study_id, TrialState.PRUNED)
        _finish(store, study_id, StudyStatus.FAILED, error=text[-20_000:])
        log.error("study %s failed:\n%s", study_id, text)
        return 1
    writer.close()
    replay_spill_files(store, study_id, spill_dir)
    # Open trials were closed after each run. Not again here: once the study is
    # COMPLETED it may be extended, and the next run's trials must not be touched.
    return outcome


def _run_segments(
    store: StudyStore, study_id: int, writer: BatchingStoreWriter, capacity: ClusterCapacity
) -> int:
    """Run the study's experiment, then a warm-started one for each time its targets
    were raised while it ran, until they are met; record the outcome. Returns the
    runner's exit code."""
    from service.runner.segments import plan_segment
    from service.runner.tuner_builder import restore_tuner
    from service.runner.warm_start import experiment_path

    settings = get_settings()
    storage_path = settings.resolved_storage_path
    first_error: str | None = None
    while True:
        record = call_with_retry(store.get_study, study_id)
        if record.status.is_terminal:  # stopped meanwhile: that outcome stands
            return 0
        study = _validated(record)
        segment = record.segments_done
        path = experiment_path(storage_path, study_id, segment)
        trials_before = _trial_count(store, study_id)
        tuner = restore_tuner(study, path)
        if tuner is not None:
            log.info("study %s: resuming run %d from %s (restart %d)",
                     study_id, segment, path, record.restarts)  # fmt: skip
        else:
            plan = plan_segment(record, trials_before)
            if plan is None:
                if _complete(store, study_id, record.extensions, first_error):
                    return 0 if first_error is None else 1
                continue  # extended meanwhile: read the new targets
            if record.restarts or segment:
                # Trials left open by a dead run that saved no experiment state.
                _discard_lost_trials(store, study_id, known=set())
            tuner = _build_segment(store, study, record, plan, capacity, writer)
        started = time.monotonic()
        results = tuner.fit()
        writer.flush(timeout_s=10.0)
        call_with_retry(close_open_trials, store, study_id, TrialState.PRUNED)
        call_with_retry(
            store.end_segment, study_id, segment=segment, seconds=time.monotonic() - started
        )
        if results.num_errors and results.num_errors == len(results):
            first_error = f"every trial failed; the first: {results.errors[0]}"
        elif len(results):
            first_error = None
        # A later run that started no trial would be followed by another just like it.
        stuck = segment > 0 and _trial_count(store, study_id) == trials_before
        if stuck and _complete(store, study_id, record.extensions, first_error, force=True):
            return 0 if first_error is None else 1


def _validated(record: StudyRecord) -> ValidatedStudy:
    from service.spec import spec_from_mapping
    from service.validation import validate_study

    return validate_study(spec_from_mapping(dict(record.spec)))


def _build_segment(
    store: StudyStore,
    study: ValidatedStudy,
    record: StudyRecord,
    plan: SegmentPlan,
    capacity: ClusterCapacity,
    writer: BatchingStoreWriter,
) -> tune.Tuner:
    from service.extension import WARM_START_ALGORITHMS
    from service.runner.callback import StoreCallback
    from service.runner.tuner_builder import build_tuner
    from service.runner.warm_start import latest_searcher_state

    storage_path = get_settings().resolved_storage_path
    state = None
    model_based = study.spec.algorithm.name in WARM_START_ALGORITHMS  # random: a new seed
    if model_based and plan.segment > 0:  # go on from this study's own last run
        state = latest_searcher_state(storage_path, record.id, plan.segment - 1)
    elif model_based and study.spec.warm_start_from is not None:
        source = study.spec.warm_start_from
        try:
            last = call_with_retry(store.get_study, source).segments_done  # its newest run
        except StudyNotFound:  # deleted since this study was submitted: start cold
            last = -1
        state = latest_searcher_state(storage_path, source, last)
    if model_based and state is None and (plan.segment or study.spec.warm_start_from):
        log.warning("study %s: no saved searcher state to warm-start from", record.id)
    log.info(
        "study %s: run %d, %d trials, time budget %s, warm start %s",
        record.id, plan.segment, plan.num_samples, plan.time_budget_s, state,
    )  # fmt: skip
    return build_tuner(
        study,
        study_id=record.id,
        capacity=capacity,
        storage_path=storage_path,
        callbacks=[
            StoreCallback(writer, study.space.normalize, iterations_of=study.planned_iterations)
        ],
        segment=plan.segment,
        num_samples=plan.num_samples,
        time_budget_s=plan.time_budget_s,
        searcher_state=state,
    )


def _trial_count(store: StudyStore, study_id: int) -> int:
    return sum(call_with_retry(store.summarize_study, study_id).trial_counts.values())


def _complete(
    store: StudyStore,
    study_id: int,
    extensions: int,
    first_error: str | None,
    *,
    force: bool = False,
) -> bool:
    """End the study (COMPLETED, or FAILED when every trial failed) unless its targets
    were raised since they were read (then False: run again). ``force``: end it all the
    same."""
    counts = call_with_retry(store.summarize_study, study_id).trial_counts
    errors = counts.get(TrialState.ERROR.value, 0)
    if first_error is None and errors and errors == sum(counts.values()):
        first_error = "every trial failed"
    status = StudyStatus.FAILED if first_error else StudyStatus.COMPLETED
    try:
        _finish(
            store,
            study_id,
            status,
            error=first_error,
            if_extensions=None if force else extensions,
        )
    except StudyExtended:
        return False
    return True


USAGE = "usage: python -m service.runner STUDY_ID | --warm JOB_ID"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    warm = len(args) == 2 and args[0] == "--warm" and bool(args[1])
    if not warm and (len(args) != 1 or not args[0].isdigit()):
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the store keeps results
    os.environ.setdefault(EXPERIMENT_SAVE_PERIOD_ENV, EXPERIMENT_SAVE_PERIOD_S)
    # ...so Tune's result grid finds no result files at the end; that is expected.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    return run_warm(args[1]) if warm else run_study(int(args[0]))


if __name__ == "__main__":
    sys.exit(main())
