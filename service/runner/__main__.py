"""Entrypoint of a study's Ray job: ``python -m service.runner STUDY_ID``."""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from types import FrameType

from service.runner.store_retry import call_with_retry
from service.runner.writer import replay_spill_files
from service.settings import get_settings
from service.store import (
    InvalidTransition,
    StudyStatus,
    StudyStore,
    TrialState,
    open_store,
)
from service.studies import close_open_trials

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
LOST_TRIAL_NOTE = (
    "started by a run of this study whose driver died before Tune saved it; "
    "its results are kept, the resumed run did not continue it"
)


def _finish(
    store: StudyStore, study_id: int, status: StudyStatus, error: str | None = None
) -> None:
    try:
        call_with_retry(store.transition_study, study_id, status, error=error)
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


def run_study(study_id: int) -> int:
    import ray

    from service.runner.callback import RunnerContext, StoreCallback, use_context
    from service.runner.tuner_builder import build_tuner, experiment_name, restore_tuner
    from service.runner.writer import BatchingStoreWriter
    from service.spec import spec_from_mapping
    from service.validation import ClusterCapacity, validate_study

    settings = get_settings()
    store = call_with_retry(open_store, settings.resolved_database_url)
    record = call_with_retry(store.get_study, study_id)
    if record.status.is_terminal:
        log.info("study %s is already %s; nothing to run", study_id, record.status.value)
        return 0
    writer: BatchingStoreWriter | None = None
    os.environ.setdefault(EXPERIMENT_SAVE_PERIOD_ENV, EXPERIMENT_SAVE_PERIOD_S)
    spill_dir = settings.home / "spill"
    try:
        study = validate_study(spec_from_mapping(dict(record.spec)))
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
        experiment_path = f"{settings.resolved_storage_path}/{experiment_name(study_id)}"
        tuner = restore_tuner(study, experiment_path) if record.restarts else None
        if tuner is not None:
            log.info(
                "study %s: resuming from %s (restart %d)",
                study_id,
                experiment_path,
                record.restarts,
            )
        else:
            if record.restarts:
                # The dead run saved no experiment state: its open trials will not go on.
                _discard_lost_trials(store, study_id, known=set())
            tuner = build_tuner(
                study,
                study_id=study_id,
                capacity=capacity,
                storage_path=settings.resolved_storage_path,
                callbacks=[
                    StoreCallback(
                        writer, study.space.normalize, iterations_of=study.planned_iterations
                    )
                ],
            )
        _stop_gracefully_on_sigterm()
        results = tuner.fit()
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
    call_with_retry(close_open_trials, store, study_id, TrialState.PRUNED)
    if results.num_errors and results.num_errors == len(results):
        first = results.errors[0]
        _finish(
            store, study_id, StudyStatus.FAILED, error=f"every trial failed; the first: {first}"
        )
        return 1
    counts = call_with_retry(store.summarize_study, study_id).trial_counts
    if counts.get(TrialState.ERROR.value) and counts[TrialState.ERROR.value] == sum(
        counts.values()
    ):
        _finish(store, study_id, StudyStatus.FAILED, error="every trial failed")
        return 1
    _finish(store, study_id, StudyStatus.COMPLETED)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m service.runner STUDY_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the store keeps results
    # ...so Tune's result grid finds no result files at the end; that is expected.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    return run_study(int(args[0]))


if __name__ == "__main__":
    sys.exit(main())
