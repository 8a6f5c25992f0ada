"""Entrypoint of a study's Ray job: ``python -m service.runner STUDY_ID``."""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from types import FrameType

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


def _finish(
    store: StudyStore, study_id: int, status: StudyStatus, error: str | None = None
) -> None:
    try:
        store.transition_study(study_id, status, error=error)
    except InvalidTransition as problem:
        # Someone else ended the study first (e.g. a user stopped it); theirs stands.
        log.info("study %s not marked %s: %s", study_id, status.value, problem)


def run_study(study_id: int) -> int:
    import ray

    from service.runner.callback import StoreCallback
    from service.runner.tuner_builder import build_tuner
    from service.runner.writer import BatchingStoreWriter
    from service.spec import spec_from_mapping
    from service.validation import ClusterCapacity, validate_study

    settings = get_settings()
    store = open_store(settings.resolved_database_url)
    record = store.get_study(study_id)
    if record.status.is_terminal:
        log.info("study %s is already %s; nothing to run", study_id, record.status.value)
        return 0
    writer: BatchingStoreWriter | None = None
    try:
        study = validate_study(spec_from_mapping(dict(record.spec)))
        ray.init(log_to_driver=False)
        resources = ray.cluster_resources()
        capacity = ClusterCapacity(cpus=resources.get("CPU", 0.0), gpus=resources.get("GPU", 0.0))
        store.transition_study(study_id, StudyStatus.RUNNING)
        writer = BatchingStoreWriter(store, study_id)
        tuner = build_tuner(
            study,
            study_id=study_id,
            capacity=capacity,
            storage_path=settings.resolved_storage_path,
            callbacks=[
                StoreCallback(writer, study.space.normalize, iterations_of=study.planned_iterations)
            ],
        )
        _stop_gracefully_on_sigterm()
        results = tuner.fit()
    except BaseException as error:  # the study failed: record why, then exit non-zero
        text = "".join(traceback.format_exception(error))
        if writer is not None:
            writer.close()
        close_open_trials(store, study_id, TrialState.PRUNED)
        _finish(store, study_id, StudyStatus.FAILED, error=text[-20_000:])
        log.error("study %s failed:\n%s", study_id, text)
        return 1
    writer.close()
    close_open_trials(store, study_id, TrialState.PRUNED)
    if len(results) and results.num_errors == len(results):
        first = results.errors[0]
        _finish(
            store, study_id, StudyStatus.FAILED, error=f"every trial failed; the first: {first}"
        )
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
