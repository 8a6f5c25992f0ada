"""The runner's batching store writer: order, batching, retry while the store is away."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from service.runner.writer import BatchingStoreWriter
from service.store import ResultWrite, StoreUnavailable, TrialState, TrialUpdate


class FakeStore:
    """Records calls; fails the first ``failures`` writes with StoreUnavailable."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[str, int]] = []
        self.results: dict[tuple[str, int], dict[str, float]] = {}
        self.lock = threading.Lock()

    def upsert_trials(self, study_id: int, updates: Sequence[TrialUpdate]) -> None:
        with self.lock:
            self._maybe_fail()
            self.calls.append(("trials", len(updates)))

    def add_results(self, study_id: int, results: Sequence[ResultWrite]) -> int:
        with self.lock:
            self._maybe_fail()
            self.calls.append(("results", len(results)))
            new = 0
            for result in results:
                key = (result.trial_id, result.iteration)
                if key not in self.results:
                    self.results[key] = dict(result.metrics)
                    new += 1
            return new

    def _maybe_fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("database is away")


def test_trials_are_written_before_their_results_and_everything_arrives() -> None:
    store = FakeStore()
    writer = BatchingStoreWriter(store, 1, flush_interval_s=0.05, max_batch=10)  # type: ignore[arg-type]
    writer.trial(TrialUpdate("t1", TrialState.RUNNING, config={"x": 1}))
    for step in range(1, 26):
        writer.result(ResultWrite("t1", step, {"loss": float(step)}))
    writer.close()
    assert store.calls[0] == ("trials", 1)
    assert sorted(store.results) == [("t1", step) for step in range(1, 26)]
    assert all(size <= 10 for kind, size in store.calls if kind == "results")
    assert writer.results_written == 25


def test_writer_retries_until_the_store_is_back() -> None:
    store = FakeStore(failures=3)
    writer = BatchingStoreWriter(store, 1, flush_interval_s=0.01)  # type: ignore[arg-type]
    writer.trial(TrialUpdate("t1", TrialState.RUNNING, config={}))
    for step in range(1, 6):
        writer.result(ResultWrite("t1", step, {"loss": 1.0}))
    writer.close()
    assert len(store.results) == 5
    assert writer.results_written == 5
