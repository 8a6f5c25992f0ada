"""The store's event log on SQLite and PostgreSQL: what each write appends, and reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.store import (
    ResultWrite,
    StudyNotFound,
    StudyStatus,
    StudyStore,
    TrialState,
    TrialUpdate,
    open_store,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StudyStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hpo.db'}"
    else:
        url = str(request.getfixturevalue("postgres_db_url"))
    opened = open_store(url)
    try:
        yield opened
    finally:
        opened.close()


def test_every_change_appends_one_event_in_order(store: StudyStore) -> None:
    study = store.create_study(name="s", spec={}, metric="loss", mode="min")
    other = store.create_study(name="o", spec={}, metric="loss", mode="min")
    store.transition_study(study.id, StudyStatus.RUNNING)
    store.upsert_trials(study.id, [TrialUpdate("a", TrialState.PENDING, config={"x": 1})])
    store.add_results(study.id, [ResultWrite("a", 1, {"loss": 2.0})])  # PENDING -> RUNNING
    store.add_results(study.id, [ResultWrite("a", 1, {"loss": 9.0})])  # a repeat: nothing
    store.add_results(other.id, [ResultWrite("z", 1, {"loss": 1.0})])  # another study
    store.add_results(study.id, [ResultWrite("b", 1, {"loss": 1.5}), ResultWrite("a", 2, {})])
    store.upsert_trials(study.id, [TrialUpdate("a", TrialState.TERMINATED)])
    store.upsert_trials(study.id, [TrialUpdate("a", TrialState.TERMINATED)])  # no change
    store.transition_study(study.id, StudyStatus.COMPLETED)

    events = store.events_after(study.id)
    summary = [
        (e.kind, e.data.get("status") or e.data.get("state") or e.data.get("iteration"))
        for e in events
    ]
    assert summary == [
        ("study", "PENDING"),
        ("study", "RUNNING"),
        ("trial", "PENDING"),
        ("trial", "RUNNING"),
        ("result", 1),
        ("trial", "RUNNING"),  # b, created by its first result
        ("result", 1),
        ("result", 2),
        ("trial", "TERMINATED"),
        ("study", "COMPLETED"),
    ]
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first = events[4].data
    assert first["trial_id"] == "a" and first["metrics"] == {"loss": 2.0}
    assert first["reported_at"] and first["stored_at"]
    assert events[2].data["config"] == {"x": 1} and events[2].data["number"] == 0
    assert [e.id for e in store.events_after(study.id, ids[3], limit=2)] == ids[4:6]
    assert store.last_event_id(study.id) == ids[-1]
    assert store.last_event_id() > ids[-1] or store.last_event_id() == ids[-1]

    ingested = store.ingested_after(0)
    assert len(ingested) == 4  # three results of the study, one of the other
    assert all(i.stored_at >= i.reported_at for i in ingested)
    assert store.status_counts()["COMPLETED"] == 1 and store.status_counts()["PENDING"] == 1
    assert store.trial_state_counts()["TERMINATED"] == 1
    assert [row[:2] for row in store.metric_series(study.id)] == [("a", 1), ("a", 2), ("b", 1)]
    assert store.metric_series(study.id)[1][2] is None  # a result without the metric


def test_deleting_a_study_deletes_its_events(store: StudyStore) -> None:
    study = store.create_study(name="s", spec={}, metric="loss", mode="min")
    store.add_results(study.id, [ResultWrite("a", 1, {"loss": 1.0})])
    store.transition_study(study.id, StudyStatus.STOPPED)
    last = store.last_event_id(study.id)
    store.delete_study(study.id)
    with pytest.raises(StudyNotFound):
        store.events_after(study.id)
    assert store.last_event_id(study.id) == 0
    again = store.create_study(name="t", spec={}, metric="loss", mode="min")
    assert store.events_after(again.id)[0].id > last  # ids are never reused
