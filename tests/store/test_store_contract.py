"""The StudyStore contract: one suite, run against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
import pickle
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.store import (
    ALLOWED_STUDY_TRANSITIONS,
    InvalidTransition,
    ResultWrite,
    StoreUnavailable,
    StudyNotFound,
    StudyRecord,
    StudyStatus,
    StudyStore,
    TrialNotFound,
    TrialState,
    TrialUpdate,
    open_store,
    runs_of,
)
from service.store.engine import create_store_engine
from service.store.sql import SqlStudyStore

UTC = dt.timezone.utc
SPEC = {"trainable": "branin", "search_space": {"x1": {"type": "uniform", "low": -5, "high": 10}}}
# How to reach each status from PENDING.
PATH_TO = {
    StudyStatus.PENDING: [],
    StudyStatus.RUNNING: [StudyStatus.RUNNING],
    StudyStatus.COMPLETED: [StudyStatus.RUNNING, StudyStatus.COMPLETED],
    StudyStatus.FAILED: [StudyStatus.RUNNING, StudyStatus.FAILED],
    StudyStatus.STOPPED: [StudyStatus.RUNNING, StudyStatus.STOPPED],
}
FINISHED = [TrialState.TERMINATED, TrialState.ERROR, TrialState.PRUNED]
MISSING = 987_654


def new_study(store: StudyStore, *, mode: str = "min", owner: str = "local") -> StudyRecord:
    return store.create_study(name="s", spec=SPEC, metric="loss", mode=mode, owner=owner)


def study_in(store: StudyStore, status: StudyStatus) -> StudyRecord:
    study = new_study(store)
    for step in PATH_TO[status]:
        study = store.transition_study(study.id, step)
    return study


def results(trial_id: str, values: Sequence[Any], start: int = 1) -> list[ResultWrite]:
    return [
        ResultWrite(trial_id, start + i, {"loss": v, "step": start + i})
        for i, v in enumerate(values)
    ]


def assert_utc(value: dt.datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)


def raw_count(url: str, table: str, study_id: int) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.text(f"SELECT count(*) FROM {table} WHERE study_id = :s")
            return int(conn.execute(query, {"s": study_id}).scalar_one())
    finally:
        engine.dispose()


# --- studies -------------------------------------------------------------------------
def test_create_and_get_study(store: StudyStore) -> None:
    before = dt.datetime.now(UTC)
    study = store.create_study(name="branin", spec=SPEC, metric="loss", mode="max", owner="ann")
    assert (study.name, study.owner, study.metric, study.mode) == ("branin", "ann", "loss", "max")
    assert study.status is StudyStatus.PENDING
    assert study.spec == SPEC
    assert study.error is study.ray_job_id is study.started_at is study.finished_at is None
    assert_utc(study.created_at)
    assert before - dt.timedelta(seconds=5) <= study.created_at <= dt.datetime.now(UTC)
    assert store.get_study(study.id) == study
    assert new_study(store).id > study.id


def test_create_study_refuses_bad_mode(store: StudyStore) -> None:
    with pytest.raises(ValueError):
        store.create_study(name="s", spec={}, metric="loss", mode="minimize")


def test_study_ids_are_not_reused_after_delete(store: StudyStore) -> None:
    study = study_in(store, StudyStatus.COMPLETED)
    store.delete_study(study.id)
    assert new_study(store).id > study.id


def test_get_unknown_study(store: StudyStore) -> None:
    with pytest.raises(StudyNotFound) as raised:
        store.get_study(MISSING)
    assert isinstance(raised.value, KeyError)


def test_list_studies_newest_first_with_paging(store: StudyStore) -> None:
    ids = [new_study(store).id for _ in range(5)]
    page = store.list_studies(limit=2)
    assert page.total == 5 and (page.limit, page.offset) == (2, 0)
    assert [s.id for s in page.items] == ids[::-1][:2]
    assert [s.id for s in store.list_studies(limit=2, offset=2).items] == ids[::-1][2:4]
    assert [s.id for s in store.list_studies(limit=2, offset=4).items] == ids[:1]
    assert store.list_studies(offset=10).items == ()


def test_list_studies_filters_by_status_and_owner(store: StudyStore) -> None:
    a = new_study(store, owner="ann")
    b = new_study(store, owner="bob")
    store.transition_study(b.id, StudyStatus.RUNNING)
    c = new_study(store, owner="ann")
    store.transition_study(c.id, StudyStatus.RUNNING)
    assert [s.id for s in store.list_studies(status=StudyStatus.PENDING).items] == [a.id]
    running = store.list_studies(status=StudyStatus.RUNNING)
    assert running.total == 2 and [s.id for s in running.items] == [c.id, b.id]
    assert [s.id for s in store.list_studies(owner="ann").items] == [c.id, a.id]
    both = store.list_studies(owner="ann", status=StudyStatus.RUNNING)
    assert [s.id for s in both.items] == [c.id]
    assert store.list_studies(owner="nobody").total == 0


# --- transitions -----------------------------------------------------------------------
@pytest.mark.parametrize("source", list(StudyStatus))
def test_every_transition_from(store: StudyStore, source: StudyStatus) -> None:
    for target in StudyStatus:
        study = study_in(store, source)
        if target == source:
            assert store.transition_study(study.id, target) == study  # no-op
        elif target in ALLOWED_STUDY_TRANSITIONS[source]:
            assert store.transition_study(study.id, target).status is target
            assert store.get_study(study.id).status is target
        else:
            with pytest.raises(InvalidTransition) as raised:
                store.transition_study(study.id, target)
            assert (raised.value.current, raised.value.wanted) == (source.value, target.value)
            assert store.get_study(study.id) == study  # unchanged


def test_terminal_states_are_final(store: StudyStore) -> None:
    for terminal in (StudyStatus.COMPLETED, StudyStatus.FAILED, StudyStatus.STOPPED):
        study = study_in(store, terminal)
        for other in StudyStatus:
            if other != terminal:
                with pytest.raises(InvalidTransition):
                    store.transition_study(study.id, other)


def test_transition_timestamps_and_error(store: StudyStore) -> None:
    study = new_study(store)
    running = store.transition_study(study.id, StudyStatus.RUNNING)
    assert_utc(running.started_at)
    assert running.finished_at is None
    again = store.transition_study(study.id, StudyStatus.RUNNING)
    assert again.started_at == running.started_at
    failed = store.transition_study(study.id, StudyStatus.FAILED, error="boom")
    assert_utc(failed.finished_at)
    assert failed.started_at == running.started_at
    assert failed.finished_at is not None and running.started_at is not None
    assert failed.finished_at >= running.started_at
    assert failed.error == "boom"
    assert store.get_study(study.id) == failed

    never_started = store.transition_study(new_study(store).id, StudyStatus.STOPPED)
    assert never_started.started_at is None
    assert_utc(never_started.finished_at)
    assert never_started.error is None


def test_transition_unknown_study(store: StudyStore) -> None:
    with pytest.raises(StudyNotFound):
        store.transition_study(MISSING, StudyStatus.RUNNING)


def test_set_ray_job(store: StudyStore) -> None:
    study = new_study(store)
    store.set_ray_job(study.id, job_id="hpo-study-1", dashboard_url="http://ray:8265")
    got = store.get_study(study.id)
    assert (got.ray_job_id, got.ray_dashboard_url) == ("hpo-study-1", "http://ray:8265")
    assert got.status is StudyStatus.PENDING
    store.set_ray_job(study.id, job_id="hpo-study-1b", dashboard_url=None)
    got = store.get_study(study.id)
    assert (got.ray_job_id, got.ray_dashboard_url) == ("hpo-study-1b", None)
    with pytest.raises(StudyNotFound):
        store.set_ray_job(MISSING, job_id="x", dashboard_url=None)


def test_study_of_job_finds_the_study_a_job_was_given(store: StudyStore) -> None:
    first, second = new_study(store), new_study(store)
    assert store.study_of_job("hpo-warm-1") is None
    store.set_ray_job(second.id, job_id="hpo-warm-1", dashboard_url=None)
    assert store.study_of_job("hpo-warm-1") == second.id
    store.set_ray_job(first.id, job_id="hpo-warm-2", dashboard_url=None)
    store.transition_study(first.id, StudyStatus.STOPPED)  # whatever its status
    assert store.study_of_job("hpo-warm-2") == first.id
    assert store.study_of_job("hpo-warm-3") is None


# --- delete ----------------------------------------------------------------------------
def test_delete_only_terminal_and_cascades(store: StudyStore, store_url: str) -> None:
    keep = study_in(store, StudyStatus.RUNNING)
    gone = study_in(store, StudyStatus.RUNNING)
    for study in (keep, gone):
        store.upsert_trials(study.id, [TrialUpdate("a", TrialState.RUNNING, {"x": 1})])
        store.add_results(study.id, results("a", [3, 2, 1]) + results("b", [5]))
    with pytest.raises(InvalidTransition):
        store.delete_study(gone.id)
    with pytest.raises(InvalidTransition):
        store.delete_study(new_study(store).id)  # PENDING is not terminal either
    store.transition_study(gone.id, StudyStatus.STOPPED)
    store.delete_study(gone.id)
    with pytest.raises(StudyNotFound):
        store.get_study(gone.id)
    with pytest.raises(StudyNotFound):
        store.get_trial(gone.id, "a")
    assert raw_count(store_url, "trials", gone.id) == 0
    assert raw_count(store_url, "results", gone.id) == 0
    assert store.count_results(keep.id) == 4
    assert [r.iteration for r in store.get_results(keep.id, "a")] == [1, 2, 3]
    with pytest.raises(StudyNotFound):
        store.delete_study(gone.id)


# --- trials ----------------------------------------------------------------------------
def test_upsert_trials_creates_in_order(store: StudyStore) -> None:
    study = new_study(store)
    store.upsert_trials(
        study.id,
        [
            TrialUpdate("t-b", TrialState.PENDING, {"x": 2}),
            TrialUpdate("t-a", TrialState.RUNNING, {"x": 1, "nested": {"w": [1, 2]}}),
        ],
    )
    store.upsert_trials(study.id, [TrialUpdate("t-c", TrialState.PENDING, {"x": 3})])
    trials = store.list_trials(study.id).items
    assert [(t.trial_id, t.number) for t in trials] == [("t-b", 0), ("t-a", 1), ("t-c", 2)]
    a = store.get_trial(study.id, "t-a")
    assert a.config == {"x": 1, "nested": {"w": [1, 2]}}
    assert a.state is TrialState.RUNNING and a.study_id == study.id
    assert (a.num_results, a.last_value, a.best_value, a.last_iteration) == (0, None, None, None)
    assert a.error is None and a.finished_at is None
    assert_utc(a.created_at)


def test_upsert_trials_state_changes(store: StudyStore) -> None:
    study = new_study(store)
    store.upsert_trials(study.id, [TrialUpdate("t", TrialState.PENDING, {"x": 1})])
    store.upsert_trials(study.id, [TrialUpdate("t", TrialState.RUNNING)])
    running = store.get_trial(study.id, "t")
    assert running.state is TrialState.RUNNING and running.config == {"x": 1}
    store.upsert_trials(study.id, [TrialUpdate("t", TrialState.ERROR, error="OOM")])
    failed = store.get_trial(study.id, "t")
    assert (failed.state, failed.error) == (TrialState.ERROR, "OOM")
    assert_utc(failed.finished_at)
    assert failed.number == 0 and failed.created_at == running.created_at


def test_finished_trial_never_reopens(store: StudyStore) -> None:
    study = new_study(store)
    for n, finished in enumerate(FINISHED):
        trial_id = f"t{n}"
        store.upsert_trials(study.id, [TrialUpdate(trial_id, TrialState.RUNNING, {"n": n})])
        store.upsert_trials(study.id, [TrialUpdate(trial_id, finished)])
        done = store.get_trial(study.id, trial_id)
        for late in (TrialState.RUNNING, TrialState.PENDING):
            store.upsert_trials(study.id, [TrialUpdate(trial_id, late, {"n": 99})])
            assert store.get_trial(study.id, trial_id) == done
    # A finished trial may move to another finished state; finished_at stays.
    store.upsert_trials(study.id, [TrialUpdate("t0", TrialState.PRUNED)])
    moved = store.get_trial(study.id, "t0")
    assert moved.state is TrialState.PRUNED
    assert moved.finished_at is not None


def test_upsert_trials_within_one_batch(store: StudyStore) -> None:
    study = new_study(store)
    store.upsert_trials(
        study.id,
        [
            TrialUpdate("t", TrialState.PENDING, {"x": 1}),
            TrialUpdate("t", TrialState.RUNNING),
            TrialUpdate("t", TrialState.TERMINATED),
            TrialUpdate("t", TrialState.RUNNING),  # late: ignored
            TrialUpdate("u", TrialState.TERMINATED, {"x": 2}),
        ],
    )
    t, u = store.list_trials(study.id).items
    assert (t.trial_id, t.number, t.state, t.config) == ("t", 0, TrialState.TERMINATED, {"x": 1})
    assert_utc(t.finished_at)
    assert (u.trial_id, u.number, u.state) == ("u", 1, TrialState.TERMINATED)
    assert_utc(u.finished_at)


def test_trial_config_can_arrive_after_results(store: StudyStore) -> None:
    study = new_study(store)
    store.add_results(study.id, results("early", [1.0]))
    assert store.get_trial(study.id, "early").config == {}
    store.upsert_trials(study.id, [TrialUpdate("early", TrialState.RUNNING, {"lr": 0.1})])
    trial = store.get_trial(study.id, "early")
    assert trial.config == {"lr": 0.1} and trial.num_results == 1


def runner_items(trials: int) -> list[TrialUpdate | ResultWrite]:
    """What a runner's writer sends: trials that start, report and end one after another
    (one errors without a result), with a result arriving twice."""
    items: list[TrialUpdate | ResultWrite] = []
    for i in range(trials):
        trial_id = f"t{i}"
        items.append(TrialUpdate(trial_id, TrialState.RUNNING, {"x": i}))
        if i == 2:
            items.append(TrialUpdate(trial_id, TrialState.ERROR, error="boom"))
            continue
        items += results(trial_id, [10.0 - i, 9.0 - (i % 3)])
        items.append(results(trial_id, [10.0 - i])[0])  # again: ignored
        items.append(TrialUpdate(trial_id, TrialState.TERMINATED))
    return items


def stored_outcome(store: StudyStore, study_id: int) -> dict[str, Any]:
    summary = store.summarize_study(study_id)
    trials = store.list_trials(study_id, limit=100).items
    return {
        "trials": [
            (t.trial_id, t.number, t.state, t.config, t.num_results, t.best_value, t.error)
            for t in trials
        ],
        "counts": dict(summary.trial_counts),
        "num_results": summary.num_results,
        "best": summary.best_trial.trial_id if summary.best_trial else None,
        "best_steps": store.best_steps(study_id),
        "events": [
            (e.kind, e.data.get("trial_id"), e.data.get("state"), e.data.get("iteration"))
            for e in store.events_after(study_id)
        ],
    }


def test_write_batch_stores_what_run_by_run_calls_store(store: StudyStore) -> None:
    """The writer's one transaction per batch: the same trials, totals and events, in the
    same order, as one call per run of one kind."""
    items = runner_items(6)
    by_runs, batched = new_study(store), new_study(store)
    for expected_new in (10, 0):  # the second time (a retried batch): nothing new
        new_by_runs = 0
        for run in runs_of(items):
            if isinstance(run[0], TrialUpdate):
                store.upsert_trials(by_runs.id, run)  # type: ignore[arg-type]
            else:
                new_by_runs += store.add_results(by_runs.id, run)  # type: ignore[arg-type]
        assert store.write_batch(batched.id, items) == new_by_runs == expected_new
    assert stored_outcome(store, batched.id) == stored_outcome(store, by_runs.id)
    assert stored_outcome(store, batched.id)["best"] == "t5"


def test_write_batch_is_all_or_nothing(store: StudyStore) -> None:
    study = new_study(store)
    revision, events = store.summarize_study(study.id).revision, store.events_after(study.id)
    bad = TrialUpdate("t1", "no-such-state")  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # after a trial, its results and its end
        store.write_batch(study.id, [*runner_items(1), bad])
    assert store.list_trials(study.id).total == 0
    assert store.events_after(study.id) == events
    assert store.summarize_study(study.id).revision == revision
    with pytest.raises(StudyNotFound):
        store.write_batch(MISSING, runner_items(1))


def test_upsert_trials_unknown_study(store: StudyStore) -> None:
    with pytest.raises(StudyNotFound):
        store.upsert_trials(MISSING, [TrialUpdate("t", TrialState.RUNNING, {})])
    with pytest.raises(StudyNotFound):
        store.upsert_trials(MISSING, [])


# --- results ---------------------------------------------------------------------------
def test_add_results_is_idempotent(store: StudyStore, store_url: str) -> None:
    study = new_study(store)
    store.upsert_trials(study.id, [TrialUpdate("t", TrialState.RUNNING, {})])
    batch = results("t", [5.0, 4.0, 3.0])
    assert store.add_results(study.id, batch) == 3
    assert store.add_results(study.id, batch) == 0
    assert raw_count(store_url, "results", study.id) == 3
    assert store.count_results(study.id) == 3
    # Overlapping batch: only the new key counts; the first row of a key is kept.
    overlap = [ResultWrite("t", 3, {"loss": -100.0}), *results("t", [2.0], start=4)]
    assert store.add_results(study.id, overlap) == 1
    got = store.get_results(study.id, "t")
    assert [(r.iteration, r.metrics["loss"]) for r in got] == [
        (1, 5.0),
        (2, 4.0),
        (3, 3.0),
        (4, 2.0),
    ]
    trial = store.get_trial(study.id, "t")
    assert (trial.num_results, trial.best_value, trial.last_value) == (4, 2.0, 2.0)
    # A key repeated inside one batch is stored once.
    assert store.add_results(study.id, results("t", [1.0], 5) + results("t", [0.0], 5)) == 1
    assert store.count_results(study.id) == 5
    assert store.add_results(study.id, []) == 0


def test_results_for_unknown_trial_create_it(store: StudyStore) -> None:
    study = new_study(store)
    store.upsert_trials(study.id, [TrialUpdate("known", TrialState.PENDING, {"x": 1})])
    assert store.add_results(study.id, results("new-1", [1.0]) + results("new-2", [2.0])) == 2
    first = store.get_trial(study.id, "new-1")
    assert (first.state, first.config, first.number, first.num_results) == (
        TrialState.RUNNING,
        {},
        1,
        1,
    )
    assert store.get_trial(study.id, "new-2").number == 2
    # A result for a PENDING trial means it runs.
    store.add_results(study.id, results("known", [0.5]))
    assert store.get_trial(study.id, "known").state is TrialState.RUNNING


def test_results_after_trial_finished_keep_it_finished(store: StudyStore) -> None:
    study = new_study(store)
    store.upsert_trials(study.id, [TrialUpdate("t", TrialState.TERMINATED, {})])
    store.add_results(study.id, results("t", [1.0]))
    trial = store.get_trial(study.id, "t")
    assert trial.state is TrialState.TERMINATED and trial.num_results == 1


@pytest.mark.parametrize(("mode", "best"), [("min", 1.0), ("max", 7.0)], ids=["min", "max"])
def test_last_and_best_value(store: StudyStore, mode: str, best: float) -> None:
    study = new_study(store, mode=mode)
    store.add_results(study.id, results("t", [4.0, 1.0, 7.0]))
    store.add_results(study.id, results("t", [3.0], start=4))
    trial = store.get_trial(study.id, "t")
    assert (trial.best_value, trial.last_value) == (best, 3.0)
    assert (trial.num_results, trial.last_iteration) == (4, 4)


def test_unusable_metric_values_are_ignored(store: StudyStore) -> None:
    study = new_study(store, mode="min")
    weird: list[Any] = [2.0, float("nan"), float("-inf"), "low", True, None]
    batch = results("t", weird) + [ResultWrite("t", 7, {"other": -50.0})]
    assert store.add_results(study.id, batch) == 7
    trial = store.get_trial(study.id, "t")
    assert (trial.best_value, trial.last_value) == (2.0, 2.0)
    assert (trial.num_results, trial.last_iteration) == (7, 7)
    nothing = store.add_results(study.id, results("u", [float("nan")]))
    assert nothing == 1
    assert store.get_trial(study.id, "u").best_value is None
    assert store.best_trial(study.id) is not None
    stored = store.get_results(study.id, "t")
    assert [r.metrics.get("loss") for r in stored] == [
        2.0,
        "NaN",
        "-Infinity",
        "low",
        True,
        None,
        None,
    ]


def test_late_older_result_does_not_change_last_value(store: StudyStore) -> None:
    study = new_study(store)
    store.add_results(study.id, [ResultWrite("t", 5, {"loss": 9.0})])
    store.add_results(study.id, [ResultWrite("t", 2, {"loss": 0.5})])
    trial = store.get_trial(study.id, "t")
    assert (trial.last_value, trial.best_value, trial.last_iteration) == (9.0, 0.5, 5)


def test_get_results_ordered_by_iteration(store: StudyStore) -> None:
    study = new_study(store)
    later = dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    store.add_results(
        study.id,
        [
            ResultWrite("t", 3, {"loss": 3.0}),
            ResultWrite("t", 1, {"loss": 1.0}),
            ResultWrite("t", 2, {"loss": 2.0, "inf": float("inf")}, reported_at=later),
        ],
    )
    got = store.get_results(study.id, "t")
    assert [r.iteration for r in got] == [1, 2, 3]
    assert all(r.trial_id == "t" and r.study_id == study.id for r in got)
    assert got[1].metrics == {"loss": 2.0, "inf": "Infinity"}
    assert got[1].reported_at == later
    for r in got:
        assert_utc(r.reported_at)
        assert_utc(r.stored_at)
    store.upsert_trials(study.id, [TrialUpdate("empty", TrialState.PENDING, {})])
    assert tuple(store.get_results(study.id, "empty")) == ()


# --- trial reads -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["min", "max"])
def test_best_trial(store: StudyStore, mode: str) -> None:
    study = new_study(store, mode=mode)
    assert store.best_trial(study.id) is None
    store.upsert_trials(study.id, [TrialUpdate("pending", TrialState.PENDING, {})])
    assert store.best_trial(study.id) is None
    store.add_results(
        study.id,
        results("a", [5.0]) + results("b", [1.0]) + results("c", [9.0]) + results("d", [1.0]),
    )
    best = store.best_trial(study.id)
    assert best is not None
    assert best.trial_id == ("b" if mode == "min" else "c")
    store.add_results(study.id, results("e", [9.0]))
    best = store.best_trial(study.id)
    assert best is not None  # ties go to the earlier trial
    assert best.trial_id == ("b" if mode == "min" else "c")


def test_list_trials_order_filter_and_paging(store: StudyStore) -> None:
    study = new_study(store, mode="max")
    values = {"t0": 3.0, "t1": None, "t2": 9.0, "t3": 1.0, "t4": None, "t5": 9.0}
    store.upsert_trials(study.id, [TrialUpdate(t, TrialState.RUNNING, {}) for t in values])
    store.add_results(study.id, [ResultWrite(t, 1, {"loss": v}) for t, v in values.items() if v])
    store.upsert_trials(
        study.id,
        [TrialUpdate("t2", TrialState.TERMINATED), TrialUpdate("t3", TrialState.TERMINATED)],
    )

    by_number = store.list_trials(study.id)
    assert [t.trial_id for t in by_number.items] == list(values)
    assert by_number.total == 6
    by_best = store.list_trials(study.id, order="best")
    assert [t.trial_id for t in by_best.items] == ["t2", "t5", "t0", "t3", "t1", "t4"]
    pages = [store.list_trials(study.id, order="best", limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [[t.trial_id for t in p.items] for p in pages] == [
        ["t2", "t5"],
        ["t0", "t3"],
        ["t1", "t4"],
        [],
    ]
    assert all(p.total == 6 and p.limit == 2 for p in pages)
    page = store.list_trials(study.id, order="best", limit=3, offset=3)
    assert [t.trial_id for t in page.items] == ["t3", "t1", "t4"]
    assert [t.trial_id for t in store.list_trials(study.id, limit=2, offset=3).items] == [
        "t3",
        "t4",
    ]

    done = store.list_trials(study.id, state=TrialState.TERMINATED)
    assert [t.trial_id for t in done.items] == ["t2", "t3"] and done.total == 2
    running_best = store.list_trials(study.id, state=TrialState.RUNNING, order="best")
    assert [t.trial_id for t in running_best.items] == ["t5", "t0", "t1", "t4"]
    assert store.list_trials(study.id, state=TrialState.ERROR).total == 0


def test_list_trials_best_order_for_min(store: StudyStore) -> None:
    study = new_study(store, mode="min")
    store.upsert_trials(study.id, [TrialUpdate("none", TrialState.PENDING, {})])
    store.add_results(study.id, results("a", [2.0]) + results("b", [-1.0]) + results("c", [2.0]))
    assert [t.trial_id for t in store.list_trials(study.id, order="best").items] == [
        "b",
        "a",
        "c",
        "none",
    ]


def test_summarize_study(store: StudyStore) -> None:
    study = new_study(store)
    empty = store.summarize_study(study.id)
    assert empty.study == study and empty.num_results == 0 and empty.best_trial is None
    assert empty.trial_counts == {s.value: 0 for s in TrialState}
    store.upsert_trials(
        study.id,
        [TrialUpdate("p", TrialState.PENDING, {}), TrialUpdate("e", TrialState.ERROR, {})],
    )
    store.add_results(study.id, results("r", [2.0, 1.0]) + results("q", [3.0]))
    summary = store.summarize_study(study.id)
    assert summary.trial_counts == {
        "PENDING": 1,
        "RUNNING": 2,
        "TERMINATED": 0,
        "ERROR": 1,
        "PRUNED": 0,
    }
    assert summary.num_results == 3
    assert summary.best_trial is not None and summary.best_trial.trial_id == "r"


def test_not_found_errors(store: StudyStore) -> None:
    study = new_study(store)
    for call in (
        lambda: store.summarize_study(MISSING),
        lambda: store.delete_study(MISSING),
        lambda: store.add_results(MISSING, results("t", [1.0])),
        lambda: store.add_results(MISSING, []),
        lambda: store.list_trials(MISSING),
        lambda: store.get_trial(MISSING, "t"),
        lambda: store.get_results(MISSING, "t"),
        lambda: store.best_trial(MISSING),
        lambda: store.count_results(MISSING),
    ):
        with pytest.raises(StudyNotFound):
            call()
    for call in (
        lambda: store.get_trial(study.id, "nope"),
        lambda: store.get_results(study.id, "nope"),
    ):
        with pytest.raises(TrialNotFound) as raised:
            call()
        assert isinstance(raised.value, KeyError) and raised.value.trial_id == "nope"


def test_bad_arguments(store: StudyStore) -> None:
    study = new_study(store)
    with pytest.raises(ValueError):
        store.list_trials(study.id, order="random")
    with pytest.raises(ValueError):
        store.list_studies(limit=-1)


# --- records -------------------------------------------------------------------------
def test_records_are_immutable_copies(store: StudyStore) -> None:
    spec = {"space": {"w": [1, 2]}, "n": 1}
    study = store.create_study(name="s", spec=spec, metric="loss", mode="min")
    spec["n"] = 2  # the caller's dict is not the stored one
    assert store.get_study(study.id).spec["n"] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        study.spec["n"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        study.spec["space"]["w"].append(3)
    store.add_results(study.id, results("t", [1.0]))
    trial = store.get_trial(study.id, "t")
    result = store.get_results(study.id, "t")[0]
    with pytest.raises(TypeError):
        trial.config["x"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        result.metrics["loss"] = 0  # type: ignore[index]
    # Still plain JSON, comparable, copyable and picklable.
    assert json.loads(json.dumps(study.spec)) == {"space": {"w": [1, 2]}, "n": 1}
    assert pickle.loads(pickle.dumps(study)) == study
    thawed = copy.deepcopy(dict(study.spec))
    assert thawed == study.spec
    assert store.get_study(study.id) == study


def test_json_non_finite_values_become_strings(store: StudyStore) -> None:
    spec = {"low": float("-inf"), "high": float("inf"), "bad": float("nan"), "t": (1, 2)}
    study = store.create_study(name="s", spec=spec, metric="loss", mode="min")
    expected = {"low": "-Infinity", "high": "Infinity", "bad": "NaN", "t": [1, 2]}
    assert study.spec == expected
    assert store.get_study(study.id).spec == expected
    store.upsert_trials(study.id, [TrialUpdate("t", TrialState.RUNNING, {"lr": math.nan})])
    assert store.get_trial(study.id, "t").config == {"lr": "NaN"}


# --- availability ----------------------------------------------------------------------
def test_unreachable_database(unreachable_url: str) -> None:
    with pytest.raises(StoreUnavailable):
        open_store(unreachable_url)
    unopened = SqlStudyStore(create_store_engine(unreachable_url))
    try:
        with pytest.raises(StoreUnavailable):
            unopened.ping()
        with pytest.raises(StoreUnavailable):
            unopened.get_study(1)
        with pytest.raises(StoreUnavailable):
            unopened.add_results(1, results("t", [1.0]))
    finally:
        unopened.close()


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite:///{blocker / 'sub' / 'hpo.db'}")


def test_ping_and_reopen(store: StudyStore, store_url: str) -> None:
    store.ping()
    study = new_study(store)
    again = open_store(store_url)  # migrations already at head: nothing to do
    try:
        assert again.get_study(study.id) == study
    finally:
        again.close()


# --- concurrency -----------------------------------------------------------------------
def test_two_writers_on_one_study_lose_nothing(store: StudyStore, store_url: str) -> None:
    study = new_study(store)
    errors: list[BaseException] = []
    batches, per_batch = 20, 10

    def write(trial_id: str) -> None:
        writer = open_store(store_url)  # like a second process: its own connections
        try:
            for b in range(batches):
                start = 1 + b * per_batch
                writer.add_results(study.id, results(trial_id, range(per_batch), start))
                if b == 0:
                    writer.upsert_trials(study.id, [TrialUpdate(trial_id, TrialState.RUNNING, {})])
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            writer.close()

    threads = [threading.Thread(target=write, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    expected = batches * per_batch
    assert store.count_results(study.id) == 2 * expected
    assert raw_count(store_url, "results", study.id) == 2 * expected
    trials = store.list_trials(study.id).items
    assert sorted(t.number for t in trials) == [0, 1]
    assert all(t.num_results == expected and t.last_iteration == expected for t in trials)


# --- crash recovery --------------------------------------------------------------------
def test_trial_reason_is_kept(store: StudyStore) -> None:
    study = study_in(store, StudyStatus.RUNNING)
    store.upsert_trials(study.id, [TrialUpdate("a", TrialState.RUNNING, config={"x": 1})])
    store.upsert_trials(
        study.id, [TrialUpdate("a", TrialState.ERROR, error="Traceback ...", reason="oom")]
    )
    store.upsert_trials(
        study.id,
        [TrialUpdate("b", TrialState.ERROR, config={}, error="x", reason="invalid_config")],
    )
    assert store.get_trial(study.id, "a").reason == "oom"
    assert store.get_trial(study.id, "b").reason == "invalid_config"
    store.upsert_trials(study.id, [TrialUpdate("c", TrialState.TERMINATED, config={})])
    assert store.get_trial(study.id, "c").reason is None


def test_restart_study_is_a_compare_and_set(store: StudyStore) -> None:
    study = study_in(store, StudyStatus.RUNNING)
    store.set_ray_job(study.id, job_id="hpo-study-1", dashboard_url=None)
    assert store.get_study(study.id).restarts == 0
    restarted = store.restart_study(
        study.id,
        from_job_id="hpo-study-1",
        to_job_id="hpo-study-1-r1",
        dashboard_url="http://ray/#/jobs/hpo-study-1-r1",
        reason="driver died",
    )
    assert restarted is not None
    assert (restarted.restarts, restarted.ray_job_id) == (1, "hpo-study-1-r1")
    assert restarted.status == StudyStatus.RUNNING
    # A second service that saw the old job loses the race: nothing changes.
    assert (
        store.restart_study(
            study.id,
            from_job_id="hpo-study-1",
            to_job_id="hpo-study-1-r2",
            dashboard_url=None,
            reason="driver died",
        )
        is None
    )
    assert store.get_study(study.id).ray_job_id == "hpo-study-1-r1"
    events = [e for e in store.events_after(study.id) if e.kind == "study"]
    assert events[-1].data["error"] == "driver died"
    store.transition_study(study.id, StudyStatus.COMPLETED)
    assert (
        store.restart_study(
            study.id,
            from_job_id="hpo-study-1-r1",
            to_job_id="hpo-study-1-r2",
            dashboard_url=None,
            reason="late",
        )
        is None
    )


def test_discard_trials_deletes_empty_ones_and_keeps_results(store: StudyStore) -> None:
    study = study_in(store, StudyStatus.RUNNING)
    store.upsert_trials(
        study.id,
        [TrialUpdate(t, TrialState.RUNNING, config={"t": t}) for t in ("kept", "ghost", "ran")],
    )
    store.add_results(study.id, [ResultWrite("ran", 1, {"loss": 1.0})])
    deleted = store.discard_trials(study.id, ["ghost", "ran", "unknown"], note="lost")
    assert deleted == 1
    ids = {t.trial_id for t in store.list_trials(study.id).items}
    assert ids == {"kept", "ran"}
    ran = store.get_trial(study.id, "ran")
    assert (ran.state, ran.error, ran.num_results) == (TrialState.PRUNED, "lost", 1)
    # The deleted trial's events went with it: every trial event names a trial.
    trial_events = [e for e in store.events_after(study.id) if e.kind == "trial"]
    assert trial_events and all(e.data.get("trial_id") is not None for e in trial_events)
    # The next trial is numbered after the last one ever given.
    store.upsert_trials(study.id, [TrialUpdate("next", TrialState.PENDING, config={})])
    assert store.get_trial(study.id, "next").number == 3
