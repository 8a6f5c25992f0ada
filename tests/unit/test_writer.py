"""The runner's batching store writer: order, batching, retry while the store is away,
bounded memory with a spill file, close with the store away and a later replay."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from service.runner.store_retry import RetryPolicy, call_with_retry
from service.runner.writer import (
    BatchingStoreWriter,
    Item,
    iter_spilled,
    replay_spill_files,
    spill_files,
)
from service.store import (
    ResultWrite,
    StoreUnavailable,
    StudyNotFound,
    StudyStore,
    TrialState,
    TrialUpdate,
    runs_of,
)

STUDY = 1


class FakeStore:
    """A store in memory that records what reached it, in order. It fails the first
    ``failures`` calls with StoreUnavailable, every call while ``down`` is set, and a
    call blocks while ``gate`` is cleared."""

    def __init__(self, failures: int = 0, *, down: bool = False) -> None:
        self.failures = failures
        self.down = threading.Event()
        if down:
            self.down.set()
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[tuple[str, int]] = []
        self.results: dict[tuple[str, int], dict[str, float]] = {}
        self.trials: dict[str, TrialUpdate] = {}
        self.log: list[tuple[str, str, int]] = []  # ("trial", id, 0) / ("result", id, step)
        self.lock = threading.Lock()
        self.fail_after_commit = 0  # that many writes commit, then raise StoreUnavailable
        self.raise_other = 0  # that many calls raise RuntimeError

    def write_batch(self, study_id: int, items: Sequence[TrialUpdate | ResultWrite]) -> int:
        """One transaction: it fails before anything is applied, or applies it all."""
        self._enter(study_id)
        with self.lock:
            self._maybe_fail()
            new = 0
            for run in runs_of(items):
                if isinstance(run[0], TrialUpdate):
                    self._upsert(run)  # type: ignore[arg-type]
                else:
                    new += self._add(run)  # type: ignore[arg-type]
            self._maybe_fail_after_commit()
            return new

    def _upsert(self, updates: Sequence[TrialUpdate]) -> None:
        self.calls.append(("trials", len(updates)))
        for update in updates:
            self.trials[update.trial_id] = update
            self.log.append(("trial", update.trial_id, 0))

    def _add(self, results: Sequence[ResultWrite]) -> int:
        self.calls.append(("results", len(results)))
        new = 0
        for result in results:
            key = (result.trial_id, result.iteration)
            if key not in self.results:
                self.results[key] = dict(result.metrics)
                self.log.append(("result", *key))
                new += 1
        return new

    def _maybe_fail_after_commit(self) -> None:
        if self.fail_after_commit:
            self.fail_after_commit -= 1
            raise StoreUnavailable("connection dropped after the commit")

    def _enter(self, study_id: int) -> None:
        if study_id != STUDY:
            raise StudyNotFound(study_id)
        self.gate.wait()

    def _maybe_fail(self) -> None:
        if self.raise_other:
            self.raise_other -= 1
            raise RuntimeError("a bug in the store")
        if self.down.is_set():
            raise StoreUnavailable("database is away")
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("database is away")

    def first(self, kind: str, trial_id: str) -> int:
        return next(i for i, (k, t, _) in enumerate(self.log) if k == kind and t == trial_id)

    def last(self, kind: str, trial_id: str) -> int:
        return max(i for i, (k, t, _) in enumerate(self.log) if k == kind and t == trial_id)


class FakeClock:
    """Time that passes only when the writer sleeps (plus a real millisecond, so that a
    retry loop never spins)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds
        time.sleep(0.001)


def make_writer(store: FakeStore, spill_dir: Path, clock: FakeClock, **options: object):
    values: dict[str, object] = {"flush_interval_s": 0.01, "clock": clock, "sleep": clock.sleep}
    values.update(options)
    return BatchingStoreWriter(store, STUDY, spill_dir=spill_dir, **values)  # type: ignore[arg-type]


def replay(store: FakeStore, spill_dir: Path, **options: Any) -> int:
    """A later runner of the study replays what was left in ``spill_dir``."""
    return replay_spill_files(cast(StudyStore, store), STUDY, spill_dir, **options)


def produce(writer: BatchingStoreWriter, trials: int, steps: int, prefix: str = "t") -> list[Item]:
    """For each trial: its RUNNING update, its results, its TERMINATED update."""
    items: list[Item] = []
    for number in range(trials):
        trial_id = f"{prefix}{number}"
        items.append(TrialUpdate(trial_id, TrialState.RUNNING, config={"x": number}))
        writer.trial(items[-1])  # type: ignore[arg-type]
        for step in range(1, steps + 1):
            items.append(ResultWrite(trial_id, step, {"loss": float(step)}))
            writer.result(items[-1])  # type: ignore[arg-type]
        items.append(TrialUpdate(trial_id, TrialState.TERMINATED))
        writer.trial(items[-1])  # type: ignore[arg-type]
    return items


def result_keys(items: Sequence[Item]) -> list[tuple[str, int]]:
    return [(i.trial_id, i.iteration) for i in items if isinstance(i, ResultWrite)]


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """A wait, not a timing check: long enough for a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def assert_trials_before_results(store: FakeStore, trial_ids: Sequence[str]) -> None:
    """Each trial's first update reached the store before its first result, and its
    TERMINATED update after its last result."""
    for trial_id in trial_ids:
        assert store.first("trial", trial_id) < store.first("result", trial_id)
        assert store.last("result", trial_id) < store.last("trial", trial_id)
        assert store.trials[trial_id].state is TrialState.TERMINATED


# --- the writer's normal path -------------------------------------------------------------
def test_trials_are_written_before_their_results_and_everything_arrives(tmp_path: Path) -> None:
    store = FakeStore()
    writer = make_writer(store, tmp_path, FakeClock(), max_batch=10)
    writer.trial(TrialUpdate("t1", TrialState.RUNNING, config={"x": 1}))
    for step in range(1, 26):
        writer.result(ResultWrite("t1", step, {"loss": float(step)}))
    writer.close()
    assert store.calls[0] == ("trials", 1)
    assert sorted(store.results) == [("t1", step) for step in range(1, 26)]
    assert all(size <= 10 for kind, size in store.calls if kind == "results")
    assert writer.results_written == 25
    assert writer.pending == 0
    assert not list(tmp_path.iterdir())


# --- retry ------------------------------------------------------------------------------------
def test_store_away_for_some_calls_then_back_writes_every_result_once(tmp_path: Path) -> None:
    store = FakeStore(failures=7)
    clock = FakeClock()
    writer = make_writer(store, tmp_path, clock, max_batch=20)
    items = produce(writer, trials=3, steps=30)
    writer.close(timeout_s=600)
    assert store.log.count(("result", "t0", 1)) == 1
    assert [k for k in store.log if k[0] == "result"] == [
        ("result", *key) for key in result_keys(items)
    ]
    assert writer.results_written == 90
    assert writer.pending == 0
    assert_trials_before_results(store, ["t0", "t1", "t2"])
    # Exponential backoff with jitter: each delay in [d/2, d] for d = 0.2, 0.4, 0.8, ...
    assert len(clock.sleeps) == 7
    for attempt, delay in enumerate(clock.sleeps):
        nominal = min(0.2 * 2**attempt, 10.0)
        assert nominal / 2 <= delay <= nominal
    assert not list(tmp_path.iterdir())


def test_other_errors_are_retried_and_never_kill_the_thread(tmp_path: Path) -> None:
    store = FakeStore()
    store.raise_other = 3
    writer = make_writer(store, tmp_path, FakeClock())
    produce(writer, trials=1, steps=5)
    writer.close(timeout_s=600)
    assert len(store.results) == 5
    assert writer.results_written == 5


def test_a_batch_that_half_succeeded_is_written_again_without_duplicates(tmp_path: Path) -> None:
    store = FakeStore()
    store.fail_after_commit = 2  # committed, but the writer heard an error
    writer = make_writer(store, tmp_path, FakeClock(), max_batch=5)
    items = produce(writer, trials=2, steps=12)
    writer.close(timeout_s=600)
    assert [k[1:] for k in store.log if k[0] == "result"] == result_keys(items)
    # The first batch (t0's update and 4 results) committed but failed twice: the store
    # counted its 4 results only on the first, unacknowledged, attempt.
    assert writer.results_written == 24 - 4
    assert len(store.results) == 24


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    delays = RetryPolicy(initial_s=0.2, max_s=10.0).delays()
    observed = [next(delays) for _ in range(12)]
    for attempt, delay in enumerate(observed):
        nominal = min(0.2 * 2**attempt, 10.0)
        assert nominal / 2 <= delay <= nominal
    assert max(observed) <= 10.0
    assert len(set(observed)) > 1


# --- bounded memory, spill, replay --------------------------------------------------------------
def test_beyond_the_bound_updates_spill_to_a_file_and_are_replayed_in_order(
    tmp_path: Path,
) -> None:
    store = FakeStore(down=True)
    writer = make_writer(store, tmp_path, FakeClock(), max_buffered=25, max_batch=10)
    items = produce(writer, trials=4, steps=20)  # 88 updates, 80 results
    wait_until(lambda: bool(writer.spill_paths))
    files = spill_files(STUDY, tmp_path)
    assert len(files) == 1
    assert f"study{STUDY}-" in files[0].name and "-pid" in files[0].name
    spilled = list(iter_spilled(files[0]))
    assert len(spilled) == len(items) - 25  # memory holds the bound, the rest is spilled
    assert spilled == items[25:]
    assert writer.pending == len(items)

    store.down.clear()
    wait_until(lambda: writer.pending == 0)
    assert [k[1:] for k in store.log if k[0] == "result"] == result_keys(items)
    assert_trials_before_results(store, ["t0", "t1", "t2", "t3"])
    assert not files[0].exists()
    writer.close()
    assert writer.results_written == 80
    assert not list(tmp_path.iterdir())


def test_spilling_keeps_order_across_memory_and_files_through_repeated_outages(
    tmp_path: Path,
) -> None:
    store = FakeStore(down=True)
    writer = make_writer(store, tmp_path, FakeClock(), max_buffered=15, max_batch=4)
    first = produce(writer, trials=3, steps=10, prefix="a")
    store.down.clear()
    second = produce(writer, trials=3, steps=10, prefix="b")  # while it catches up
    store.down.set()
    third = produce(writer, trials=3, steps=10, prefix="c")
    store.down.clear()
    writer.close(timeout_s=600)
    produced = first + second + third
    assert [k[1:] for k in store.log if k[0] == "result"] == result_keys(produced)
    assert_trials_before_results(store, [f"{p}{n}" for p in "abc" for n in range(3)])
    assert writer.results_written == 90
    assert writer.pending == 0
    assert not list(tmp_path.iterdir())


def test_close_with_the_store_away_leaves_a_spill_file_that_a_later_runner_replays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FakeStore(down=True)
    writer = make_writer(store, tmp_path, FakeClock(), max_buffered=20, max_batch=8)
    items = produce(writer, trials=3, steps=15)  # memory and a spill file both in use
    other_study = tmp_path / "hpo-spill-study12-20260101T000000000000-pid1-000001.jsonl"
    other_study.write_text("{}\n")
    with caplog.at_level(logging.WARNING, logger="service.runner.writer"):
        writer.close(timeout_s=30)  # fake time: passes while the writer backs off
    files = spill_files(STUDY, tmp_path)
    assert len(files) == 1
    assert str(files[0]) in caplog.text
    assert list(iter_spilled(files[0])) == items  # everything, in the order produced
    assert writer.pending == len(items)
    assert not store.results

    store.down.clear()
    later = FakeStore()
    later.results = store.results  # the same database, seen by a restarted runner
    assert replay(later, tmp_path) == 45
    assert [k[1:] for k in later.log if k[0] == "result"] == result_keys(items)
    assert_trials_before_results(later, ["t0", "t1", "t2"])
    assert spill_files(STUDY, tmp_path) == []
    assert other_study.exists()  # another study's file is not touched
    assert replay(later, tmp_path) == 0


def test_replay_skips_a_torn_last_line_and_is_idempotent(tmp_path: Path) -> None:
    store = FakeStore(down=True)
    writer = make_writer(store, tmp_path, FakeClock(), max_buffered=1)
    produce(writer, trials=1, steps=4)
    writer.close(timeout_s=5)
    (path,) = spill_files(STUDY, tmp_path)
    with open(path, "ab") as handle:
        handle.write(b'{"kind":"result","trial_id":"t0","itera')  # a crash mid-write
    target = FakeStore()
    target.results[("t0", 2)] = {"loss": 2.0}  # written before the outage
    assert replay(target, tmp_path) == 3
    assert sorted(target.results) == [("t0", step) for step in range(1, 5)]
    assert not path.exists()


def test_replay_gives_up_while_the_store_stays_away_and_keeps_the_file(tmp_path: Path) -> None:
    store = FakeStore(down=True)
    writer = make_writer(store, tmp_path, FakeClock(), max_buffered=1)
    produce(writer, trials=1, steps=3)
    writer.close(timeout_s=5)
    clock = FakeClock()
    policy = RetryPolicy(clock=clock, sleep=clock.sleep)
    with pytest.raises(StoreUnavailable):
        replay(store, tmp_path, give_up_after_s=30, policy=policy)
    assert len(spill_files(STUDY, tmp_path)) == 1
    assert sum(clock.sleeps) == pytest.approx(30)


def test_updates_after_close_are_spilled_not_lost(tmp_path: Path) -> None:
    store = FakeStore()
    writer = make_writer(store, tmp_path, FakeClock())
    produce(writer, trials=1, steps=2)
    writer.close()
    writer.result(ResultWrite("t0", 3, {"loss": 0.0}))
    assert writer.pending == 1
    assert replay(store, tmp_path) == 1
    assert ("t0", 3) in store.results


# --- the producer never waits ----------------------------------------------------------------
def test_a_burst_of_results_never_blocks_the_producer_while_the_store_hangs(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    store.gate.clear()  # every store call hangs until the gate opens
    writer = make_writer(store, tmp_path, FakeClock())  # default bound: 50 000 in memory
    burst = 100_000
    took: list[float] = []

    def producer() -> None:
        start = time.perf_counter()
        writer.trial(TrialUpdate("t0", TrialState.RUNNING, config={}))
        for step in range(1, burst + 1):
            writer.result(ResultWrite("t0", step, {"loss": 1.0}))
        took.append(time.perf_counter() - start)

    thread = threading.Thread(target=producer)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the producer waited for the store"
    print(f"{burst} result() calls with the store hanging: {took[0]:.2f} s")
    assert writer.pending == burst + 1
    assert len(spill_files(STUDY, tmp_path)) == 1

    store.gate.set()
    writer.close(timeout_s=60)
    assert writer.results_written == burst
    assert len(store.results) == burst
    assert store.first("trial", "t0") < store.first("result", "t0")
    assert not list(tmp_path.iterdir())


# --- call_with_retry -------------------------------------------------------------------------
def test_call_with_retry_retries_while_the_store_is_unavailable() -> None:
    clock = FakeClock()
    failures = iter([True, True, True, False])

    def mark(study_id: int, *, status: str) -> str:
        if next(failures):
            raise StoreUnavailable("away")
        return f"{study_id} {status}"

    policy = RetryPolicy(clock=clock, sleep=clock.sleep)
    assert call_with_retry(mark, 7, status="RUNNING", policy=policy) == "7 RUNNING"
    assert len(clock.sleeps) == 3


def test_call_with_retry_gives_up_and_lets_other_errors_through() -> None:
    clock = FakeClock()
    policy = RetryPolicy(clock=clock, sleep=clock.sleep)
    calls = 0

    def away() -> None:
        nonlocal calls
        calls += 1
        raise StoreUnavailable("away")

    with pytest.raises(StoreUnavailable):
        call_with_retry(away, give_up_after_s=60, policy=policy)
    assert sum(clock.sleeps) == pytest.approx(60)
    assert max(clock.sleeps) <= 10.0
    assert calls == len(clock.sleeps) + 1

    def missing() -> None:
        raise StudyNotFound(3)

    before = len(clock.sleeps)
    with pytest.raises(StudyNotFound):
        call_with_retry(missing, policy=policy)
    assert len(clock.sleeps) == before
