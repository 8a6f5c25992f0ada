"""Why a trial failed, and whether trying again can help.

A trial is retried (Tune's ``FailureConfig``, from its last checkpoint) only when a
process or node under it was lost: the same config may well succeed on the next try.
Running out of memory or an invalid config would fail again, so those trials end in
``ERROR`` with a reason at once, as does any other exception (a bug shows its traceback
once, not ``max_failures`` times).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator


class InvalidConfig(ValueError):
    """Raised by a trainable for a config it cannot train (found only once running)."""


class WorkerLost(RuntimeError):
    """Raised by the trial function when a process or node under it was lost: Tune
    retries the trial (``max_failures``), and the driver knows the reason from the type
    alone once the retries are used up (Ray pickles the trial's error across processes,
    and a Ray Train error's per-worker details do not always survive that)."""


class FailureReason(str, enum.Enum):
    LOST = "worker_lost"  # a worker process or node died: retried
    OOM = "oom"
    INVALID_CONFIG = "invalid_config"
    ERROR = "error"  # any other exception

    @property
    def retryable(self) -> bool:
        return self is FailureReason.LOST


# Ray's own words when its memory monitor kills a worker (the error is an actor death).
_OOM_TEXTS = ("out of memory", "running low on memory", "outofmemoryerror")


def _causes(error: BaseException, seen: set[int] | None = None) -> Iterator[BaseException]:
    """The error and everything behind it: chained causes, Ray's wrapped causes, and each
    failed worker's error of a Ray Train run."""
    seen = seen if seen is not None else set()
    if id(error) in seen:
        return
    seen.add(id(error))
    yield error
    nested: list[BaseException] = []
    for attribute in ("__cause__", "__context__", "cause", "controller_failure"):
        value = getattr(error, attribute, None)
        if isinstance(value, BaseException):
            nested.append(value)
    failures = getattr(error, "worker_failures", None)  # ray.train.WorkerGroupError
    if isinstance(failures, dict):
        nested.extend(value for value in failures.values() if isinstance(value, BaseException))
    for inner in nested:
        yield from _causes(inner, seen)


def _is_oom(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    name = type(error).__name__.lower()
    if "outofmemory" in name:  # torch.cuda.OutOfMemoryError, ray.exceptions.OutOfMemoryError
        return True
    text = str(error).lower()
    return any(phrase in text for phrase in _OOM_TEXTS)


def _is_lost_process(error: BaseException) -> bool:
    """A process or node that died under the trial (not an exception its code raised)."""
    try:
        from ray import exceptions as ray_errors
    except ImportError:  # pragma: no cover - Ray is always there in a trial
        return False
    lost: tuple[type[BaseException], ...] = (
        ray_errors.ActorDiedError,
        ray_errors.ActorUnavailableError,
        ray_errors.WorkerCrashedError,
        ray_errors.NodeDiedError,
        ray_errors.LocalRayletDiedError,
        ray_errors.ObjectLostError,
    )
    if isinstance(error, (*lost, WorkerLost)):
        return True
    # Ray Train: a worker that stops answering its health check (killed, node gone).
    return type(error).__name__ in {
        "WorkerHealthCheckFailedError",
        "WorkerHealthCheckTimeoutError",
        "PreemptionError",
    }


def classify_text(text: str) -> FailureReason:
    """The reason from an error's text alone (when only Tune's error file is left)."""
    if WorkerLost.__name__ in text:
        return FailureReason.LOST
    if InvalidConfig.__name__ in text:
        return FailureReason.INVALID_CONFIG
    if any(phrase in text.lower() for phrase in _OOM_TEXTS):
        return FailureReason.OOM
    return FailureReason.ERROR


def classify(error: BaseException) -> FailureReason:
    """The reason a trial failed with ``error``.

    Out of memory wins over a lost process (Ray's memory monitor kills the worker it
    blames), a lost process over everything else (when one DDP worker dies the others
    fail on the broken connection: their errors are consequences, not causes).
    """
    causes = list(_causes(error))
    if any(_is_oom(cause) for cause in causes):
        return FailureReason.OOM
    if any(_is_lost_process(cause) for cause in causes):
        return FailureReason.LOST
    if any(isinstance(cause, InvalidConfig) for cause in causes):
        return FailureReason.INVALID_CONFIG
    return FailureReason.ERROR


# Keys of the last result of a trial that failed for good (see ``report_failure``).
FAILURE_REASON_KEY = "hpo_failure_reason"
FAILURE_TEXT_KEY = "hpo_failure_text"
# What the searcher and scheduler see as the failed trial's metric: far worse than any
# real value, but finite (a searcher may refuse inf or NaN).
BAD_VALUE = 1e30


def report_failure(error: BaseException, reason: FailureReason, metric: str, mode: str) -> None:
    """End the current Tune trial for good: report the failure as its last result.

    Raising would let Tune retry the trial up to ``max_failures`` times; a trial that
    ran out of memory or got an invalid config would only fail again. Its last result
    carries the reason and the traceback (the store marks the trial ``ERROR`` with them
    and keeps no result row for it) and a metric worse than any real one, so the
    searcher learns that this region of the space is bad.
    """
    import traceback

    from ray import tune

    text = "".join(traceback.format_exception(error))[-20_000:]
    tune.report(
        {
            metric: BAD_VALUE if mode == "min" else -BAD_VALUE,
            FAILURE_REASON_KEY: reason.value,
            FAILURE_TEXT_KEY: text,
        }
    )
