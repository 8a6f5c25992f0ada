"""The study event stream (SSE) on real Ray jobs, read with a real SSE client (httpx-sse)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from httpx_sse import ServerSentEvent, connect_sse

from service.api.app import create_app
from service.client import HpoClient
from tests.fixtures.service import LiveService
from tests.fixtures.watch import TERMINAL, FollowedStudy, data, noop_spec, sse_events

pytestmark = pytest.mark.ray


def stored_results(client: HpoClient, study_id: int) -> list[tuple[str, int, Any]]:
    """What the store holds: (trial, iteration, loss) by trial number, then iteration."""
    rows = []
    for trial in client.trials(study_id, limit=1000).items:
        for result in client.results(study_id, trial.trial_id).items:
            rows.append((trial.trial_id, result.iteration, result.metrics["loss"]))
    return rows


def streamed_results(events: list[ServerSentEvent]) -> list[tuple[str, int, Any]]:
    return [
        (d["trial_id"], d["iteration"], d["metrics"]["loss"])
        for d in (data(e) for e in events if e.event == "result")
    ]


def assert_well_formed(events: list[ServerSentEvent]) -> None:
    ids = [int(e.id) for e in events if e.event]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), "ids grow, none twice"
    assert {e.event for e in events} <= {"study", "trial", "result"}
    last = events[-1]
    assert last.event == "study" and data(last)["status"] in TERMINAL, "ends with the outcome"


def test_follow_a_running_study_to_its_end(
    live_service: LiveService, followed_study: FollowedStudy
) -> None:
    events = followed_study.events
    assert_well_formed(events)
    statuses = [data(e)["status"] for e in events if e.event == "study"]
    assert statuses == ["PENDING", "RUNNING", "COMPLETED"]
    with live_service.client() as client:
        store = stored_results(client, followed_study.study_id)
        trials = client.trials(followed_study.study_id, limit=1000).items
    streamed = streamed_results(events)
    assert len(store) == 4 * 8
    assert sorted(streamed) == sorted(store), "exactly the results the store holds"
    for trial in trials:  # each trial's results in order, after its creation event
        its = [r[1] for r in streamed if r[0] == trial.trial_id]
        assert its == list(range(1, 9))
        trial_events = [data(e) for e in events if e.event == "trial"]
        mine = [d for d in trial_events if d["trial_id"] == trial.trial_id]
        assert mine[0]["config"]["x1"] == trial.config["x1"]
        assert mine[-1]["state"] == trial.state == "TERMINATED"
        first_result = next(
            int(e.id)
            for e in events
            if e.event == "result" and data(e)["trial_id"] == trial.trial_id
        )
        first_trial_event = next(
            int(e.id)
            for e in events
            if e.event == "trial" and data(e)["trial_id"] == trial.trial_id
        )
        assert first_trial_event < first_result


def test_reconnect_with_last_event_id_misses_nothing(live_service: LiveService) -> None:
    with live_service.client() as client:
        study = client.submit(noop_spec("reconnect", trials=4, iterations=10, sleep_s=0.15))
    first = list(sse_events(live_service.url, study.id, stop_after=12))  # then hang up
    assert first[-1].event == "result"
    second = list(sse_events(live_service.url, study.id, last_event_id=first[-1].id))
    union = first + second
    assert_well_formed(union)
    with live_service.client() as client:
        store = stored_results(client, study.id)
    streamed = streamed_results(union)
    assert len(streamed) == len(set(streamed)) == len(store) == 40
    assert sorted(streamed) == sorted(store)

    # Nothing after the final event: 204, which tells an EventSource to stop retrying.
    answer = httpx.get(
        f"{live_service.url}/api/v1/studies/{study.id}/events",
        headers={"Last-Event-ID": union[-1].id},
    )
    assert answer.status_code == 204


def test_events_survive_a_service_restart(
    live_service: LiveService, followed_study: FollowedStudy
) -> None:
    """A new service process on the same database serves the same events, so a client
    resuming with Last-Event-ID after a restart gets exactly the rest."""
    settings = live_service.settings(job_poll_interval_s=3600)
    events = followed_study.events
    middle = events[len(events) // 2]
    with TestClient(create_app(settings), headers=live_service.headers()) as fresh:
        path = f"/api/v1/studies/{followed_study.study_id}/events"
        with connect_sse(fresh, "GET", path, headers={"Last-Event-ID": middle.id}) as src:
            rest = [e for e in src.iter_sse() if e.data]
        with connect_sse(fresh, "GET", path) as src:
            replay = [e for e in src.iter_sse() if e.data]
    expected = events[len(events) // 2 + 1 :]
    assert [(e.id, e.event, e.data) for e in rest] == [(e.id, e.event, e.data) for e in expected]
    assert [(e.id, e.data) for e in replay] == [(e.id, e.data) for e in events]


def test_client_events_iterator_and_errors(
    live_service: LiveService, followed_study: FollowedStudy
) -> None:
    with live_service.client() as client:
        events = list(client.events(followed_study.study_id))
        assert [e.id for e in events] == [int(e.id) for e in followed_study.events]
        assert events[-1].is_terminal
        assert list(client.events(followed_study.study_id, last_event_id=events[-1].id)) == []
    missing = httpx.get(f"{live_service.url}/api/v1/studies/999999/events")
    assert missing.status_code == 404
    bad = httpx.get(
        f"{live_service.url}/api/v1/studies/{followed_study.study_id}/events",
        headers={"Last-Event-ID": "abc"},
    )
    assert bad.status_code == 422
