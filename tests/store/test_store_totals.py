"""What the study row keeps about its trials (counts per state, best trial, revision),
keyset paging, and the reads the page's snapshot uses: on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from service.store import (
    ResultWrite,
    StudyNotFound,
    StudyRecord,
    StudyStatus,
    StudyStore,
    TrialState,
    TrialUpdate,
)
from service.store.engine import create_store_engine
from service.store.migrate import upgrade
from service.store.sql import SqlStudyStore

SPEC = {"trainable": "branin"}
AT = dt.datetime(2026, 11, 1)  # every old trial finished at the same moment: number order


def new_study(store: StudyStore, mode: str = "min") -> StudyRecord:
    study = store.create_study(name="s", spec=SPEC, metric="loss", mode=mode)
    store.transition_study(study.id, StudyStatus.RUNNING)
    return study


def counted(store: StudyStore, study_id: int) -> dict[str, int]:
    """Counts per state from the trials themselves (what the row must agree with)."""
    trials = store.list_trials(study_id, limit=10_000).items
    counts = Counter(t.state.value for t in trials)
    return {state.value: counts.get(state.value, 0) for state in TrialState}


def ranked_best(store: StudyStore, study_id: int, mode: str) -> str | None:
    """The best trial by brute force: best value for the mode, ties to the lowest number."""
    valued = [
        t for t in store.list_trials(study_id, limit=10_000).items if t.best_value is not None
    ]
    if not valued:
        return None
    sign = 1 if mode == "min" else -1
    return min(valued, key=lambda t: (sign * t.best_value, t.number)).trial_id  # type: ignore[operator]


def assert_totals(store: StudyStore, study_id: int, mode: str) -> None:
    summary = store.summarize_study(study_id)
    assert dict(summary.trial_counts) == counted(store, study_id)
    best = summary.best_trial.trial_id if summary.best_trial else None
    assert best == ranked_best(store, study_id, mode)
    assert store.list_trials(study_id).total == sum(summary.trial_counts.values())
    for state in TrialState:
        assert store.list_trials(study_id, state=state).total == summary.trial_counts[state.value]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_counts_and_best_follow_every_kind_of_write(store: StudyStore, mode: str) -> None:
    study = new_study(store, mode)
    assert_totals(store, study.id, mode)
    store.upsert_trials(
        study.id, [TrialUpdate(f"t{i}", TrialState.PENDING, config={}) for i in range(6)]
    )
    assert store.summarize_study(study.id).trial_counts["PENDING"] == 6
    store.upsert_trials(
        study.id, [TrialUpdate("t0", TrialState.RUNNING), TrialUpdate("t1", TrialState.RUNNING)]
    )
    # results move a PENDING trial to RUNNING and create unknown trials RUNNING
    store.add_results(
        study.id, [ResultWrite("t2", 1, {"loss": 5.0}), ResultWrite("new", 1, {"loss": 7.0})]
    )
    assert_totals(store, study.id, mode)
    store.add_results(
        study.id, [ResultWrite("t0", 1, {"loss": 3.0}), ResultWrite("t1", 1, {"loss": 3.0})]
    )
    assert_totals(store, study.id, mode)  # a tie: the lower number wins
    store.add_results(
        study.id, [ResultWrite("t1", 2, {"loss": 1.0}), ResultWrite("t1", 3, {"loss": 9.0})]
    )
    assert_totals(store, study.id, mode)
    store.upsert_trials(
        study.id,
        [
            TrialUpdate("t0", TrialState.TERMINATED),
            TrialUpdate("t1", TrialState.ERROR, error="boom"),
            TrialUpdate("t2", TrialState.PRUNED),
            TrialUpdate("t0", TrialState.RUNNING),  # a late status: ignored
        ],
    )
    assert_totals(store, study.id, mode)
    # a retried batch and an empty one change nothing, not even the revision
    revision = store.summarize_study(study.id).revision
    assert store.add_results(study.id, [ResultWrite("t1", 2, {"loss": 1.0})]) == 0
    store.upsert_trials(study.id, [TrialUpdate("t0", TrialState.TERMINATED)])
    store.upsert_trials(study.id, [])
    assert store.summarize_study(study.id).revision == revision
    # discards: t3 (no results) goes, new (results) ends PRUNED
    assert store.discard_trials(study.id, ["t3", "new"], note="lost") == 1
    assert_totals(store, study.id, mode)
    assert store.trial_state_counts() == store.summarize_study(study.id).trial_counts


@pytest.mark.parametrize("mode", ["min", "max"])
def test_best_trial_matches_brute_force_under_random_writes(store: StudyStore, mode: str) -> None:
    rng = random.Random(7)
    study = new_study(store, mode)
    ids = [f"t{i}" for i in range(30)]
    store.upsert_trials(study.id, [TrialUpdate(t, TrialState.PENDING, config={}) for t in ids])
    iterations: Counter[str] = Counter()
    for _ in range(12):
        batch = []
        for t in rng.sample(ids, 8):
            iterations[t] += 1
            value = rng.choice([1.0, 2.0, 3.0, rng.uniform(0, 5), float("nan"), None])
            batch.append(ResultWrite(t, iterations[t], {"loss": value}))
        store.add_results(study.id, batch)
        ended = rng.sample(ids, 3)
        store.upsert_trials(study.id, [TrialUpdate(t, rng.choice(list(TrialState))) for t in ended])
        assert_totals(store, study.id, mode)
        assert store.best_trial(study.id) == store.summarize_study(study.id).best_trial


def test_revision_grows_with_every_write(store: StudyStore) -> None:
    study = store.create_study(name="s", spec=SPEC, metric="loss", mode="min")
    seen = [store.summarize_study(study.id).revision]

    def grew() -> None:
        seen.append(store.summarize_study(study.id).revision)
        assert seen[-1] > seen[-2]
        assert store.revisions([study.id, 999_999]) == {study.id: seen[-1]}

    store.set_ray_job(study.id, job_id="j1", dashboard_url=None)
    grew()
    store.transition_study(study.id, StudyStatus.RUNNING)
    grew()
    store.restart_study(study.id, from_job_id="j1", to_job_id="j2", dashboard_url=None, reason="x")
    grew()
    store.upsert_trials(study.id, [TrialUpdate("a", TrialState.RUNNING, config={})])
    grew()
    store.add_results(study.id, [ResultWrite("a", 1, {"loss": 1.0})])
    grew()
    store.discard_trials(study.id, ["a"], note="lost")
    grew()
    store.transition_study(study.id, StudyStatus.COMPLETED)
    grew()
    store.delete_study(study.id)
    assert store.revisions([study.id]) == {}


def test_keyset_pages_return_every_trial_once(store: StudyStore) -> None:
    study = new_study(store)
    store.upsert_trials(
        study.id, [TrialUpdate(f"t{i:02d}", TrialState.RUNNING, config={}) for i in range(25)]
    )
    store.discard_trials(study.id, ["t03", "t10", "t11"], note="lost")  # gaps in the numbers
    store.upsert_trials(
        study.id, [TrialUpdate(f"u{i}", TrialState.PENDING, config={}) for i in range(4)]
    )
    everything = [t.trial_id for t in store.list_trials(study.id, limit=1000).items]
    assert len(everything) == 26
    seen: list[str] = []
    after = None
    while True:
        page = store.list_trials(study.id, limit=4, after=after)
        assert page.total == 26
        seen += [t.trial_id for t in page.items]
        if len(page.items) < 4:
            break
        after = page.items[-1].number
    assert seen == everything
    # offsets stay right with gaps, and without them (the dense shortcut)
    by_offset = [
        t.trial_id
        for o in range(0, 26, 5)
        for t in store.list_trials(study.id, limit=5, offset=o).items
    ]
    assert by_offset == everything
    dense = new_study(store)
    store.upsert_trials(
        dense.id, [TrialUpdate(f"d{i}", TrialState.RUNNING, config={}) for i in range(12)]
    )
    pages = [
        t.number
        for o in range(0, 12, 5)
        for t in store.list_trials(dense.id, limit=5, offset=o).items
    ]
    assert pages == list(range(12))
    filtered = store.list_trials(study.id, state=TrialState.PENDING, limit=2, after=20)
    assert [t.trial_id for t in filtered.items] == ["u0", "u1"] and filtered.total == 4
    with pytest.raises(ValueError):
        store.list_trials(study.id, order="best", after=3)


def test_snapshot_reads(store: StudyStore) -> None:
    study = new_study(store)
    store.upsert_trials(
        study.id, [TrialUpdate(f"t{i}", TrialState.RUNNING, config={}) for i in range(6)]
    )
    for i, value in enumerate([5.0, 3.0, 4.0, 1.0, 2.0]):
        store.add_results(study.id, [ResultWrite(f"t{i}", 1, {"loss": value})])
    for i in (2, 0, 3, 1):  # finish in this order: bests 4, 5, 1, 3
        store.upsert_trials(study.id, [TrialUpdate(f"t{i}", TrialState.TERMINATED)])
    store.upsert_trials(study.id, [TrialUpdate("t5", TrialState.ERROR)])  # no best value
    store.discard_trials(study.id, ["t4"], note="lost")  # PRUNED with its best, 2
    assert store.best_steps(study.id) == ((1, 4.0), (3, 1.0))
    assert [t.trial_id for t in store.trials_by_numbers(study.id, [4, 0, 4, 99])] == ["t0", "t4"]
    series = store.metric_series(study.id, ["t3", "t1"])
    assert sorted(series) == [("t1", 1, 3.0), ("t3", 1, 1.0)]
    with pytest.raises(StudyNotFound):
        store.trials_by_numbers(999_999, [0])
    with pytest.raises(StudyNotFound):
        store.metric_series(999_999)
    with pytest.raises(StudyNotFound):
        store.best_steps(999_999)


def test_metric_series_returns_values_as_reported(store: StudyStore) -> None:
    """PostgreSQL picks the metric in SQL, SQLite decodes each document: the same values
    either way, floats to the last digit, other JSON values as they were, absent = None."""
    study = new_study(store)
    store.upsert_trials(study.id, [TrialUpdate("t", TrialState.RUNNING, config={})])
    reported: list[Any] = [0.1 + 0.2, 1e-300, 123456789.12345679, 7, None, "n/a", [1, 2]]
    store.add_results(
        study.id,
        [ResultWrite("t", i + 1, {"loss": v, "other": 1}) for i, v in enumerate(reported)]
        + [ResultWrite("t", len(reported) + 1, {"other": 1})],
    )
    values = [value for _, _, value in store.metric_series(study.id)]
    assert values == [*reported, None]
    assert [type(v) for v in values[:4]] == [float, float, float, int]


def test_upgrade_computes_totals_of_existing_studies(store_url: str) -> None:
    """A database of the previous schema (0004) gets its studies' counts and best trials."""
    engine = create_store_engine(store_url)
    try:
        upgrade(engine, "0004")
        with engine.begin() as conn:
            for mode in ("min", "max"):
                conn.execute(
                    sa.text(
                        "INSERT INTO studies (name, owner, spec, metric, mode, status, "
                        "num_results, created_at) VALUES ('old', 'ann', '{}', 'loss', :mode, "
                        "'COMPLETED', 0, CURRENT_TIMESTAMP)"
                    ),
                    {"mode": mode},
                )
            studies = [
                row[0] for row in conn.execute(sa.text("SELECT id FROM studies ORDER BY id"))
            ]
            rows = [
                ("a", "TERMINATED", 2.0),
                ("b", "TERMINATED", 1.0),
                ("c", "PRUNED", 3.0),
                ("d", "ERROR", None),
                ("e", "RUNNING", 1.0),
            ]
            for study_id in studies:
                for number, (trial, state, best) in enumerate(rows):
                    conn.execute(
                        sa.text(
                            "INSERT INTO trials (study_id, trial_id, number, config, state, "
                            "best_value, num_results, created_at, finished_at) VALUES (:s, :t, "
                            ":n, '{}', :state, :best, 1, :at, :finished)"
                        ),
                        {
                            "s": study_id,
                            "t": trial,
                            "n": number,
                            "state": state,
                            "best": best,
                            "at": AT,
                            "finished": None if state == "RUNNING" else AT,
                        },
                    )
        upgrade(engine)
    finally:
        engine.dispose()
    store = SqlStudyStore.from_url(store_url)
    try:
        low, high = (store.summarize_study(s) for s in studies)
        assert dict(low.trial_counts) == {
            "PENDING": 0,
            "RUNNING": 1,
            "TERMINATED": 2,
            "ERROR": 1,
            "PRUNED": 1,
        }
        assert low.best_trial is not None and low.best_trial.trial_id == "b"  # tie with e: b first
        assert high.best_trial is not None and high.best_trial.trial_id == "c"
        assert store.best_steps(studies[0]) == ((1, 2.0), (2, 1.0))
        assert store.best_steps(studies[1]) == ((1, 2.0), (3, 3.0))
        # writes carry on from the computed totals
        store.add_results(studies[0], [ResultWrite("d", 1, {"loss": 0.5})])
        assert store.summarize_study(studies[0]).best_trial.trial_id == "d"  # type: ignore[union-attr]
    finally:
        store.close()
