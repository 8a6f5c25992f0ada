"""A Ray Tune callback that mirrors trials and their results into the study store."""

from __future__ import annotations

import datetime as dt
import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from service.runner.writer import BatchingStoreWriter
from service.store import ResultWrite, TrialState, TrialUpdate
from trainables.failures import (
    FAILURE_REASON_KEY,
    FAILURE_TEXT_KEY,
    FailureReason,
    classify,
    classify_text,
)

# Keys Tune adds to every result; the store keeps the trainable's own metrics only
# (plus time_total_s, which benchmarks and plots use).
TUNE_AUTO_KEYS = frozenset(
    {
        "config",
        "trial_id",
        "experiment_id",
        "experiment_tag",
        "date",
        "timestamp",
        "time_this_iter_s",
        "time_since_restore",
        "timesteps_since_restore",
        "iterations_since_restore",
        "training_iteration",
        "timesteps_total",
        "episodes_total",
        "hostname",
        "node_ip",
        "pid",
        "done",
        "should_checkpoint",
        "checkpoint_dir_name",
        "checkpoint_path",
        "warmup_time",
    }
)

_TUNE_STATE_TO_STORE = {
    Trial.PENDING: TrialState.PENDING,
    Trial.PAUSED: TrialState.PENDING,  # paused by a scheduler, will resume
    Trial.RUNNING: TrialState.RUNNING,
}


def result_metrics(result: Mapping[str, Any]) -> dict[str, Any]:
    """The trainable's metrics from a Tune result: JSON-friendly scalars, nothing Tune adds."""
    metrics: dict[str, Any] = {}
    for key, value in result.items():
        if key in TUNE_AUTO_KEYS:
            continue
        if isinstance(value, bool | int | str) or value is None:
            metrics[key] = value
        elif isinstance(value, float):
            metrics[key] = value if math.isfinite(value) else None
        elif hasattr(value, "item"):  # numpy / torch scalars
            try:
                metrics[key] = value.item()
            except (TypeError, ValueError):
                continue
    return metrics


@dataclass
class RunnerContext:
    """What a callback unpickled by ``Tuner.restore`` (from an earlier runner's
    experiment state) needs of this runner process: its writer, and whom to tell which
    trials the restored experiment knows (the store may hold trials that the dead driver
    created after Tune last saved its state)."""

    writer: BatchingStoreWriter
    on_restored: Callable[[set[str]], None] = lambda trial_ids: None


_context: RunnerContext | None = None  # one study per runner process


def use_context(context: RunnerContext) -> None:
    """Call before ``Tuner.restore``: restored callbacks bind to this context."""
    global _context
    _context = context


class StoreCallback(Callback):
    """Sends every trial's creation, state changes and results to the store writer.

    ``normalize`` turns the config a searcher produced into the user's form (conditional
    branches flattened), so the store shows what the trainable received.
    """

    def __init__(
        self,
        writer: BatchingStoreWriter,
        normalize: Callable[[Mapping[str, Any]], dict[str, Any]],
        *,
        iterations_of: Callable[[Mapping[str, Any]], int | None] = lambda config: None,
        sync_interval_s: float = 0.5,
    ) -> None:
        self._writer = writer
        self._normalize = normalize
        self._iterations_of = iterations_of
        self._planned: dict[str, int | None] = {}  # iterations each trial would run in full
        # Per trial: was its last result a scheduler's stop (done=True), at which step.
        self._last_result: dict[str, tuple[bool, int]] = {}
        self._sync_interval_s = sync_interval_s
        self._known: dict[str, TrialState] = {}
        # Trials that reported a failure for good (see trainables.failures): reason, text.
        self._failed: dict[str, tuple[str, str]] = {}
        self._last_sync = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config (callbacks included) into the experiment state;
        # the writer's thread and locks stay behind, in this process only.
        state = self.__dict__.copy()
        state["_writer"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled by Tuner.restore in a new runner: write through that runner's writer.
        self.__dict__.update(state)
        assert _context is not None, "use_context() before Tuner.restore"
        self._writer = _context.writer
        self._on_restored: Callable[[set[str]], None] | None = _context.on_restored

    # --- trial states ------------------------------------------------------------------
    def _send(
        self,
        trial: Trial,
        state: TrialState,
        error: str | None = None,
        reason: str | None = None,
    ) -> None:
        if self._known.get(trial.trial_id) == state and error is None:
            return
        config = None
        if trial.trial_id not in self._known:
            config = self._normalize(trial.config)
            self._planned[trial.trial_id] = self._iterations_of(config)
        self._known[trial.trial_id] = state
        self._writer.trial(
            TrialUpdate(trial.trial_id, state, config=config, error=error, reason=reason)
        )

    def _send_finished(self, trial: Trial) -> None:
        """A trial Tune ended without an error: TERMINATED, PRUNED, or ERROR when its last
        result was a failure it reported (an out-of-memory, an invalid config...)."""
        if trial.trial_id in self._failed:
            reason, text = self._failed[trial.trial_id]
            self._send(trial, TrialState.ERROR, error=text, reason=reason)
        else:
            pruned = self._was_pruned(trial)
            self._send(trial, TrialState.PRUNED if pruned else TrialState.TERMINATED)

    def _send_error(self, trial: Trial) -> None:
        """A trial Tune marked ERROR: it failed again after its retries (a lost worker) or
        failed in a way the trial function could not catch."""
        self._send(
            trial, TrialState.ERROR, error=trial_error_text(trial), reason=trial_error_reason(trial)
        )

    def get_state(self) -> dict[str, Any] | None:
        # Tune calls this as it saves its experiment state (a driver resumed after a
        # crash restarts from that state): first get every result it has seen so far
        # into the store, so none is lost with a driver that dies right after. Bounded:
        # while the database is away the results stay with the writer.
        if self._writer is not None:
            self._writer.flush(timeout_s=2.0)
        return None

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        on_restored = getattr(self, "_on_restored", None)
        if on_restored is not None:  # the first step of a restored experiment
            self._on_restored = None
            on_restored({trial.trial_id for trial in trials})

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        # Tune has no hook for "created" or "paused": look at the trials now and then.
        now = time.monotonic()
        if now - self._last_sync < self._sync_interval_s:
            return
        self._last_sync = now
        for trial in trials:
            state = _TUNE_STATE_TO_STORE.get(trial.status)
            if (
                state is not None
                and not self._known.get(trial.trial_id, TrialState.PENDING).is_finished
            ):
                self._send(trial, state)

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._send(trial, TrialState.RUNNING)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._send_finished(trial)

    def _was_pruned(self, trial: Trial) -> bool:
        """Pruned = ended before its planned iterations (a scheduler stopped it, paused it
        and then dropped it, or the time budget ran out). For a trainable without a
        fidelity, Tune's own mark is used: the result a scheduler or stopper stops a trial
        on is done=True when callbacks see it, while a trial that returned on its own
        ends on a result with done=False."""
        stopped, step = self._last_result.get(trial.trial_id, (False, 0))
        planned = self._planned.get(trial.trial_id)
        if planned is not None:
            return step < planned
        return stopped

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._send_error(trial)

    # --- results -----------------------------------------------------------------------
    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        if trial.trial_id not in self._known:
            self._send(trial, TrialState.RUNNING)
        step = result.get("training_iteration")
        if not isinstance(step, int):
            return
        if FAILURE_REASON_KEY in result:  # not a training result: the trial's failure
            text = str(result.get(FAILURE_TEXT_KEY) or "the trial failed")
            self._failed[trial.trial_id] = (str(result[FAILURE_REASON_KEY]), text)
            return
        self._last_result[trial.trial_id] = (bool(result.get("done")), step)
        self._writer.result(
            ResultWrite(
                trial_id=trial.trial_id,
                iteration=step,
                metrics=result_metrics(result),
                reported_at=dt.datetime.now(dt.timezone.utc),
            )
        )

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for trial in trials:
            if trial.trial_id not in self._known or not self._known[trial.trial_id].is_finished:
                if trial.status == Trial.ERROR:
                    self._send_error(trial)
                elif trial.status == Trial.TERMINATED:
                    self._send_finished(trial)
                else:  # never ran, or cut by the time budget
                    self._send(trial, TrialState.PRUNED)


def trial_error_reason(trial: Trial) -> str:
    """Why Tune's ERROR trial failed: from its pickled error, else from its error text."""
    try:
        error = trial.get_pickled_error()
    except Exception:
        error = None
    if error is not None and (reason := classify(error)) is not FailureReason.ERROR:
        return reason.value
    return classify_text(trial_error_text(trial)).value


def trial_error_text(trial: Trial, limit: int = 20_000) -> str:
    """The trial's error with its traceback, as Tune recorded it."""
    try:
        if trial.error_file:
            with open(trial.error_file) as handle:
                text = handle.read()
            if text.strip():
                return text[-limit:]
        error = trial.get_pickled_error()
        if error is not None:
            return "".join(traceback.format_exception(error))[-limit:]
    except Exception as problem:  # the error file may be gone on a remote node
        return f"trial failed; its error could not be read: {problem}"
    return "trial failed (Tune recorded no error text)"
