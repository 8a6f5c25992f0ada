"""Run a Ray Train ``TorchTrainer`` inside a Tune trial, with Tune-visible checkpoints.

The trial function builds and fits a Train V2 ``TorchTrainer`` (the pattern Ray 2.60
documents for Train inside Tune). Ray's ``TuneReportCallback`` forwards each Train result
to Tune but only as metrics, with the checkpoint's path as one more metric: Tune never
holds a checkpoint of the trial, so a trial that HyperBand pauses restarts with
``training_iteration`` 1 and the scheduler's budgets go wrong. ``ForwardToTrial`` here
forwards the same results, and the trial function reports each one with a pointer
checkpoint (see ``pointer_checkpoint``): Tune restores the trial's iteration count from
it, and the new ``TorchTrainer`` hands the pointed-to Train checkpoint to its workers
(``train_loop_config[RESUME_KEY]``), which continue from the saved epoch.

When Tune pauses or stops the trial, the function aborts its Train run before returning,
which frees the run's workers and placement group at once (the trial must run under
``tune_trainable.trial_trainable`` so that Tune waits for this).

Each ``TorchTrainer`` is a new Train run stored under the Tune trial's directory, named
after the trial and the iteration it starts from, so concurrent trials never collide and
a resumed trial does not pick up checkpoints newer than the one Tune saw.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any, cast

import pyarrow.fs
import ray
import ray.train
from ray import tune
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2.api.callback import UserCallback
from ray.train.v2.api.config import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.v2.torch.torch_trainer import TorchTrainer  # = ray.train.torch.TorchTrainer (V2)
from ray.util.queue import Empty, Queue

from trainables import pointer_checkpoint
from trainables.registry import TrialResources
from trainables.train_channel import (
    RESUME_KEY,
    AnnounceController,
    ControllerStarted,
    ForwardToTrial,
    TrainResult,
    unpack,
)

logger = logging.getLogger(__name__)

# Tune may lag Train by up to 2 registered checkpoints (one waiting in the queue, one
# waiting to be put); keep a margin so the one Tune points at is never deleted.
KEEP_TRAIN_CHECKPOINTS = 4
# Ray Train's controller polls its workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by
# default) and takes reports only then: short epochs would each last 2 s. Poll faster
# unless the operator set it; the controller inherits the trial process's RAY_TRAIN_* vars.
TRAIN_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
TRAIN_POLL_S = 0.5
PREEMPTION_WATCHER_ENV = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"
_POLL_S = 0.5
_ABORT_TIMEOUT_S = 30.0


def scaling_config(resources: TrialResources) -> ScalingConfig:
    per_worker: dict[str, float] = {"CPU": resources.cpus_per_worker}
    if resources.use_gpu:
        per_worker["GPU"] = 1
    return ScalingConfig(
        num_workers=resources.total_workers,
        use_gpu=resources.use_gpu,
        resources_per_worker=per_worker,
    )


def train_storage() -> tuple[str, pyarrow.fs.FileSystem | None]:
    """Where this trial's Train runs keep their checkpoints: ``<trial dir>/train``.

    The trial's directory on Tune's storage (shared by all nodes when the Tuner's storage
    is), read from the Tune session; the local trial directory if that is unavailable.
    """
    try:
        from ray.train._internal.session import get_session

        session = get_session()
        assert session is not None, "not in a Tune trial"
        storage = session.storage
        return f"{storage.trial_fs_path}/train", storage.storage_filesystem
    except Exception:  # a Ray without these internals: fall back to the public API
        return f"{tune.get_context().get_trial_dir()}/train", None


def fit_in_tune(
    train_loop_per_worker: Callable[[dict[str, Any]], None],
    loop_config: Mapping[str, Any],
    resources: TrialResources,
) -> None:
    """Fit a ``TorchTrainer`` inside the current Tune trial, reporting every result to Tune."""
    os.environ.setdefault(TRAIN_POLL_ENV, str(TRAIN_POLL_S))
    # Ray Train starts a preemption-watcher actor (one more process) for every run; a
    # trial starts a run each time it starts or resumes. Off unless the cluster's
    # environment turns it on (Train passes this variable on to its controller).
    os.environ.setdefault(PREEMPTION_WATCHER_ENV, "0")
    storage_path, filesystem = train_storage()
    resume = pointer_checkpoint.resume_point(filesystem)
    iteration = resume.iteration if resume else 0
    trial_id = tune.get_context().get_trial_id()
    queue = Queue(maxsize=1, actor_options={"num_cpus": 0})
    trainer = _TorchTrainerWithoutDatasets(
        train_loop_per_worker,
        train_loop_config={**loop_config, RESUME_KEY: resume.checkpoint if resume else None},
        scaling_config=scaling_config(resources),
        run_config=RunConfig(
            name=f"{trial_id}-from{iteration:04d}-{uuid.uuid4().hex[:6]}",
            storage_path=storage_path,
            storage_filesystem=filesystem,
            callbacks=[cast(UserCallback, AnnounceController(queue)), ForwardToTrial(queue)],
            checkpoint_config=CheckpointConfig(num_to_keep=KEEP_TRAIN_CHECKPOINTS),
            # Failures go to Tune, which retries from the trial's latest checkpoint.
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    fit = _FitThread(trainer)
    fit.start()
    controller = None
    try:
        while (result := _next_result(queue, fit)) is not None:
            controller = result.controller
            if isinstance(result, ControllerStarted):
                continue
            iteration += 1
            pointer_checkpoint.report(result.metrics, result.checkpoint, iteration)
        fit.join()
        if fit.error is not None:
            raise fit.error
    except BaseException:
        # Tune stopping or pausing the trial arrives here as SystemExit from tune.report.
        if controller is None and fit.is_alive():
            controller = _controller_once_started(queue)
        _abort(controller, queue)
        raise
    finally:
        with suppress(Exception):
            queue.shutdown(force=True)


class _TorchTrainerWithoutDatasets(TorchTrainer):
    """Ray Train starts a ``DatasetManager`` actor for every run, datasets or not: one
    more process a run (1.4 s of imports on 2 cores), and a trial starts a run each time
    it starts or resumes. Our trainables pass no datasets; with none, no manager."""

    def _create_default_callbacks(self) -> list[Any]:
        callbacks = list(super()._create_default_callbacks())
        if self.datasets:
            return callbacks
        return [c for c in callbacks if not isinstance(c, DatasetsCallback)]


class _FitThread(threading.Thread):
    def __init__(self, trainer: TorchTrainer) -> None:
        super().__init__(name="hpo-train-fit", daemon=True)
        self._trainer = trainer
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._trainer.fit()
        except BaseException as error:
            self.error = error


def _next_result(queue: Queue, fit: _FitThread) -> TrainResult | ControllerStarted | None:
    """The next Train result; None once the run has ended and every result was taken.

    Raises ``SystemExit`` when Tune stops the trial while it waits (as ``tune.report``
    would at the trial's next report).
    """
    while True:
        if _tune_is_stopping():
            raise SystemExit(0)
        try:
            return unpack(queue.get(timeout=_POLL_S))
        except Empty:
            if fit.is_alive():
                continue
        # The run has ended, so every result was put before; take the last one, if any.
        try:
            return unpack(queue.get_nowait())
        except Empty:
            return None


def _controller_once_started(queue: Queue) -> Any:
    """The run's controller, waiting a little for it to announce itself."""
    try:
        item = queue.get(timeout=_ABORT_TIMEOUT_S / 3)
    except Empty:
        return None
    return unpack(item).controller


def _tune_is_stopping() -> bool:
    try:
        from ray.train._internal.session import get_session

        session = get_session()
        return session is not None and session.stop_event.is_set()
    except Exception:
        return False


def _abort(controller: Any, queue: Queue) -> None:
    """Stop the Train run, which releases its workers and placement group."""
    if controller is None:
        return  # the controller has not started: nothing holds workers yet
    done = controller.abort.remote()
    deadline = _ABORT_TIMEOUT_S
    while deadline > 0:
        # The controller may be blocked handing us a result: take it, so it can abort.
        with suppress(Exception):
            queue.get_nowait()
        ready, _ = ray.wait([done], timeout=_POLL_S)
        if ready:
            with suppress(ray.exceptions.RayActorError):
                ray.get(done)  # abort() ends the controller's process: an actor error
            return
        deadline -= _POLL_S
    logger.warning("Train controller did not abort in %.0f s; killing it", _ABORT_TIMEOUT_S)
    with suppress(Exception):
        ray.kill(controller)
