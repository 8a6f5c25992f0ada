"""Trial failure classification: what is retried and what ends the trial with a reason."""

from __future__ import annotations

import pytest
from ray import exceptions as ray_errors
from ray.train import WorkerGroupError
from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError

from trainables.failures import (
    FailureReason,
    InvalidConfig,
    WorkerLost,
    classify,
    classify_text,
)


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as error:
            raise outer from error
    except BaseException as error:
        return error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("bad number"), FailureReason.ERROR),
        (RuntimeError("boom"), FailureReason.ERROR),
        (MemoryError(), FailureReason.OOM),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), FailureReason.OOM),
        (InvalidConfig("d_model must divide n_heads"), FailureReason.INVALID_CONFIG),
        (ray_errors.ActorDiedError(), FailureReason.LOST),
        (ray_errors.WorkerCrashedError(), FailureReason.LOST),
        (ray_errors.NodeDiedError("node gone"), FailureReason.LOST),
    ],
)
def test_single_errors(error: BaseException, reason: FailureReason) -> None:
    assert classify(error) is reason
    assert reason.retryable == (reason is FailureReason.LOST)


def test_causes_are_followed() -> None:
    assert classify(chained(RuntimeError("trial failed"), MemoryError())) is FailureReason.OOM
    assert (
        classify(chained(RuntimeError("x"), InvalidConfig("bad"))) is FailureReason.INVALID_CONFIG
    )


def test_a_killed_ddp_worker_is_a_lost_process_not_the_peers_errors() -> None:
    # One worker died (health check failed); its peer failed on the broken connection.
    error = WorkerGroupError(
        "2 workers failed",
        {
            0: RuntimeError("[gloo] Connection closed by peer"),
            1: WorkerHealthCheckFailedError("worker 1 died", ray_errors.ActorDiedError()),
        },
    )
    assert classify(error) is FailureReason.LOST


def test_workers_out_of_memory_are_not_retried() -> None:
    error = WorkerGroupError("oom", {0: RuntimeError("CUDA out of memory"), 1: ValueError()})
    assert classify(error) is FailureReason.OOM
    # Ray's memory monitor kills the worker it blames: out of memory, not a lost worker.
    killed = ray_errors.OutOfMemoryError("Task was killed due to the node running low on memory")
    assert classify(WorkerGroupError("oom", {0: killed})) is FailureReason.OOM


def test_user_errors_in_workers() -> None:
    error = WorkerGroupError("bad", {0: InvalidConfig("tp must divide heads")})
    assert classify(error) is FailureReason.INVALID_CONFIG
    assert classify(WorkerGroupError("bug", {0: KeyError("x")})) is FailureReason.ERROR


def test_the_trial_functions_marker_and_error_texts() -> None:
    assert classify(WorkerLost("a worker process or node was lost")) is FailureReason.LOST
    assert classify(chained(RuntimeError("wrapped"), WorkerLost("x"))) is FailureReason.LOST
    assert classify_text("ray.exceptions.RayTaskError(WorkerLost): ...") is FailureReason.LOST
    assert classify_text("InvalidConfig: tp must divide heads") is FailureReason.INVALID_CONFIG
    assert classify_text("RuntimeError: CUDA out of memory") is FailureReason.OOM
    assert classify_text("KeyError: 'x'") is FailureReason.ERROR
