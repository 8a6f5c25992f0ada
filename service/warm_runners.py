"""Warm runners: Ray jobs started before the studies they will run.

A new study's runner needs 4-5 s on 2 cores before Tune starts its first trial: Ray
Jobs starts a supervisor process, which starts the runner, which imports Ray Tune and
connects to the cluster. A warm runner has done all that while nothing waited; a new
study is given its job id (``StudyStore.set_ray_job``) and the runner, which polls the
store for it, runs the study at once.

The price is the job's name: the study runs as Ray job ``hpo-warm-<hex>``, not
``hpo-study-<id>`` (a job's id and metadata are fixed when it is submitted). The study
record, the API and the page link the job either way. Off unless ``HPO_WARM_RUNNERS`` is
set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from service.errors import LaunchError, RayUnavailable
from service.launcher import JobState, RayJobLauncher

log = logging.getLogger(__name__)

# A warm runner that no study took exits after this long (service.runner), so a service
# that died leaves none behind for long. The pool retires its own earlier, so it never
# gives out a runner that is about to leave.
RUNNER_IDLE_LIMIT_S = 1800.0
RETIRE_AFTER_S = 1200.0
# After Ray refused a warm runner, or one ended before a study took it (it could not
# start: a wrong database URL, a missing package), wait this long before the next one.
RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class _Runner:
    job_id: str
    submitted_at: float


class WarmRunnerPool:
    """Keeps ``size`` warm runners submitted; gives one to each new study while any is
    ready. Thread-safe: the job watcher refills it while requests take from it."""

    def __init__(
        self,
        launcher: RayJobLauncher,
        size: int,
        *,
        retire_after_s: float = RETIRE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._launcher = launcher
        self._size = size
        self._retire_after_s = retire_after_s
        self._clock = clock
        self._ready: list[_Runner] = []
        self._lock = threading.Lock()
        self._refilling = threading.Lock()
        self._retry_at = 0.0
        self._closed = False

    @property
    def ready(self) -> list[str]:
        with self._lock:
            return [runner.job_id for runner in self._ready]

    def take(self) -> str | None:
        """The job id of a live warm runner, now no longer in the pool, or None (launch the
        study as usual). A runner whose job has ended is never given out."""
        while True:
            with self._lock:
                if not self._ready:
                    return None
                runner = self._ready.pop(0)
            if self._too_old(runner):
                self._stop(runner.job_id)
                continue
            try:
                state = self._launcher.info(runner.job_id).state
            except RayUnavailable:
                with self._lock:  # not known to be dead: keep it for the next study
                    self._ready.insert(0, runner)
                return None
            if not state.is_terminal:
                return runner.job_id
            self._ended(runner, state)

    def refill(self) -> None:
        """Retire runners too old to be given out, forget those whose job ended, and
        submit new ones up to the pool's size. Called by the job watcher every round, and
        in the background after a study took a runner."""
        if not self._refilling.acquire(blocking=False):
            return  # another thread is at it
        try:
            self._retire_and_forget()
            while not self._closed and len(self.ready) < self._size:
                if self._clock() < self._retry_at:
                    return
                try:
                    job_id = self._launcher.submit_warm_runner()
                except (LaunchError, RayUnavailable) as error:
                    self._retry_at = self._clock() + RETRY_AFTER_S
                    log.warning("could not start a warm runner (next try in %.0f s): %s",
                                RETRY_AFTER_S, error)  # fmt: skip
                    return
                with self._lock:
                    closed = self._closed
                    if not closed:
                        self._ready.append(_Runner(job_id, self._clock()))
                if closed:  # the service stopped while this one was being submitted
                    self._stop(job_id)
        finally:
            self._refilling.release()

    def refill_in_background(self) -> None:
        threading.Thread(target=self.refill, name="hpo-warm-runners", daemon=True).start()

    def close(self) -> None:
        """Stop the runners no study took (the service is stopping)."""
        self._closed = True
        with self._lock:
            runners, self._ready = self._ready, []
        for runner in runners:
            self._stop(runner.job_id)

    def _retire_and_forget(self) -> None:
        with self._lock:
            runners = list(self._ready)
        for runner in runners:
            if self._too_old(runner):
                if self._remove(runner):
                    self._stop(runner.job_id)
                continue
            try:
                state = self._launcher.info(runner.job_id).state
            except RayUnavailable:
                return
            if state.is_terminal and self._remove(runner):
                self._ended(runner, state)

    def _too_old(self, runner: _Runner) -> bool:
        return self._clock() - runner.submitted_at > self._retire_after_s

    def _ended(self, runner: _Runner, state: JobState) -> None:
        """Its job ended though no study took it: see its logs; pause before the next."""
        self._retry_at = self._clock() + RETRY_AFTER_S
        log.warning("warm runner %s ended (%s) before a study took it; the next in %.0f s",
                    runner.job_id, state.value, RETRY_AFTER_S)  # fmt: skip

    def _remove(self, runner: _Runner) -> bool:
        """False when a study took it meanwhile."""
        with self._lock:
            if runner not in self._ready:
                return False
            self._ready.remove(runner)
            return True

    def _stop(self, job_id: str) -> None:
        try:
            self._launcher.stop(job_id)
        except RayUnavailable as error:
            log.warning("could not stop warm runner %s: %s", job_id, error)
