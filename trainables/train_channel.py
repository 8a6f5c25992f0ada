"""What a Train run's controller hands the Tune trial that started it, through a Ray queue.

The callbacks here run in the Train controller's process and the queue is an actor of its
own: both unpickle what they are given, and each import costs a process seconds of CPU
(this module's importer, ``train_in_tune``, pulls in ``TorchTrainer`` and torch: 3 s in
the controller, 5.5 s in the queue on 2 cores, for every Train run a trial starts). So
this module imports only what the controller has loaded anyway, and results travel
through the queue as pickled bytes that only the trial unpickles.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import ray
import ray.train
from ray.train.v2._internal.execution.callback import ControllerCallback
from ray.train.v2.api.callback import UserCallback
from ray.util.queue import Queue

# train_loop_config key holding the ray.train.Checkpoint to resume from (or None).
RESUME_KEY = "resume_from_checkpoint"


@dataclass(frozen=True)
class TrainResult:
    metrics: dict[str, Any]
    checkpoint: ray.train.Checkpoint | None
    controller: Any  # the Train controller's actor handle


@dataclass(frozen=True)
class ControllerStarted:
    controller: Any  # the Train controller's actor handle, before any result


def unpack(payload: bytes) -> TrainResult | ControllerStarted:
    """A queue item as the trial sees it (see :func:`_pack`)."""
    metrics, checkpoint, controller = pickle.loads(payload)
    if metrics is None:
        return ControllerStarted(controller)
    return TrainResult(metrics, checkpoint, controller)


def _pack(controller: Any, metrics: dict[str, Any] | None = None, checkpoint: Any = None) -> bytes:
    """The controller's actor handle goes into the bytes too: a queue given the handle
    itself imports the controller's module (1.3 s) to unpickle it. The controller is owned
    by the trial's process, which keeps it alive; the handle needs no reference counting."""
    return pickle.dumps((metrics, checkpoint, controller))


class AnnounceController(ControllerCallback):
    """Runs in the Train controller as it starts: hands the trial function its handle.

    Without it, a trial told to stop before its run's first result (HyperBand pausing a
    trial whose workers are still starting) could not abort the run, and with reused
    trial actors the run would keep its workers while the next trial waits for them.
    (Ray Train passes callbacks that are not ``UserCallback`` to its controller as is.)
    """

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def after_controller_start(self, train_run_context: Any) -> None:
        self._queue.put(_pack(ray.get_runtime_context().current_actor))


class ForwardToTrial(UserCallback):
    """Runs in the Train controller: hands every consolidated report to the trial function."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def after_report(
        self,
        run_context: Any,
        metrics: list[dict[str, Any]],
        checkpoint: ray.train.Checkpoint | None,
    ) -> None:
        controller = ray.get_runtime_context().current_actor
        # Blocks while the trial has not taken the previous result: Tune's pace.
        self._queue.put(_pack(controller, dict(metrics[0]), checkpoint))
