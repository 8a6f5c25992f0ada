"""A batching writer: trial updates and results go to the store from one background thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from service.store import ResultWrite, StoreUnavailable, StudyStore, TrialUpdate

log = logging.getLogger(__name__)


class BatchingStoreWriter:
    """Collects trial updates and results and writes them in batches.

    Trial updates always go before the results of the same flush, so a result never
    arrives before its trial's config. Writes are idempotent (results are keyed by
    study, trial, iteration), so a batch that failed half way is simply written again.
    """

    def __init__(
        self,
        store: StudyStore,
        study_id: int,
        *,
        flush_interval_s: float = 0.2,
        max_batch: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._study_id = study_id
        self._flush_interval_s = flush_interval_s
        self._max_batch = max_batch
        self._clock = clock
        self._lock = threading.Condition()
        self._trials: list[TrialUpdate] = []
        self._results: list[ResultWrite] = []
        self._closed = False
        self.results_written = 0
        self._thread = threading.Thread(target=self._run, name="hpo-store-writer", daemon=True)
        self._thread.start()

    def trial(self, update: TrialUpdate) -> None:
        with self._lock:
            self._trials.append(update)
            self._lock.notify()

    def result(self, result: ResultWrite) -> None:
        with self._lock:
            self._results.append(result)
            if len(self._results) >= self._max_batch:
                self._lock.notify()

    def close(self, timeout_s: float = 60.0) -> None:
        """Write everything still buffered, then stop the thread."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._closed:
                    self._lock.wait(self._flush_interval_s)
                trials, self._trials = self._trials, []
                results, self._results = self._results, []
                closed = self._closed
            if trials or results:
                self._write(trials, results)
            if closed:
                with self._lock:
                    if not self._trials and not self._results:
                        return

    def _write(self, trials: list[TrialUpdate], results: list[ResultWrite]) -> None:
        delay = 0.2
        while True:
            try:
                if trials:
                    self._store.upsert_trials(self._study_id, trials)
                    trials = []
                for start in range(0, len(results), self._max_batch):
                    batch = results[start : start + self._max_batch]
                    self.results_written += self._store.add_results(self._study_id, batch)
                return
            except StoreUnavailable as error:
                # The database is away: keep the batch and try again with backoff.
                log.warning("store unavailable (%s); retrying in %.1f s", error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
