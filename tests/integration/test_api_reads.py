"""The read path over HTTP (in-process, no Ray): study documents from the study cache stay
current with the store, tokens and owners are checked on every request, keyset paging,
and the page's snapshot, complete and sampled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.api import snapshot as snapshot_module
from service.api.app import create_app
from service.api.routers import web as web_router
from service.api.study_cache import StudyCache
from service.settings import Settings
from service.store import (
    ResultWrite,
    StudyStatus,
    StudyStore,
    TrialState,
    TrialUpdate,
    open_store,
)

TOKENS = {"ann": "ann-token-0123456789abcdef", "bob": "bob-token-0123456789abcdef"}
ADMIN = "admin-token-0123456789abcdef"
SPEC = {"name": "s", "trainable": "branin", "metric": "loss", "mode": "min", "num_samples": 10}


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[tuple[TestClient, StudyStore, StudyCache]]:
    """The app (Ray at a port that answers nothing) and, beside it, the store as the
    runner sees it: writes from outside the service."""
    tokens = ",".join(f"{t}={name}" for name, t in TOKENS.items()) + f",{ADMIN}=root:admin"
    settings = Settings(
        home=tmp_path,
        ray_address="http://127.0.0.1:9",
        validate_capacity=False,
        api_tokens=SecretStr(tokens),
        job_poll_interval_s=3600,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        cache: StudyCache = app.state.study_cache
        cache.poll_s = 3600.0  # the test validates by hand, so nothing races it
        store = open_store(settings.resolved_database_url)
        try:
            yield client, store, cache
        finally:
            store.close()


def as_(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.get(who, ADMIN if who == 'root' else who)}"}


def running_study(store: StudyStore, owner: str = "ann", trials: int = 3) -> int:
    study = store.create_study(name="s", spec=SPEC, metric="loss", mode="min", owner=owner)
    store.transition_study(study.id, StudyStatus.RUNNING)
    store.upsert_trials(
        study.id,
        [TrialUpdate(f"t{i:03d}", TrialState.RUNNING, config={"x": i}) for i in range(trials)],
    )
    return study.id


def test_a_cached_study_follows_the_store(service: Any) -> None:
    client, store, cache = service
    study_id = running_study(store)
    first = client.get(f"/api/v1/studies/{study_id}", headers=as_("ann"))
    assert first.status_code == 200
    assert first.json()["num_results"] == 0 and first.json()["trial_counts"]["RUNNING"] == 3
    assert cache.get(study_id, "study") is not None
    assert client.get(f"/api/v1/studies/{study_id}", headers=as_("ann")).content == first.content

    # The runner stores a result and ends a trial, from outside the service.
    store.add_results(study_id, [ResultWrite("t001", 1, {"loss": 0.5})])
    store.upsert_trials(study_id, [TrialUpdate("t000", TrialState.TERMINATED)])
    # With Cache-Control: no-cache the store is read now.
    fresh = client.get(
        f"/api/v1/studies/{study_id}", headers={**as_("ann"), "Cache-Control": "no-cache"}
    ).json()
    assert fresh["num_results"] == 1 and fresh["best_trial"]["trial_id"] == "t001"

    store.add_results(study_id, [ResultWrite("t002", 1, {"loss": 0.25})])
    assert cache.validate() == 1  # the poll: the study moved on, its entry goes
    after = client.get(f"/api/v1/studies/{study_id}", headers=as_("ann")).json()
    assert after["num_results"] == 2
    assert after["trial_counts"] == {
        "PENDING": 0,
        "RUNNING": 2,
        "TERMINATED": 1,
        "ERROR": 0,
        "PRUNED": 0,
    }
    assert after["best_trial"]["trial_id"] == "t002"
    assert cache.validate() == 0  # nothing changed since

    store.transition_study(study_id, StudyStatus.COMPLETED)
    cache.validate()
    assert client.get(f"/api/v1/studies/{study_id}", headers=as_("ann")).json()["status"] == (
        "COMPLETED"
    )
    # A study deleted elsewhere is gone at the next poll; deleted here, at once.
    store.delete_study(study_id)
    cache.validate()
    assert client.get(f"/api/v1/studies/{study_id}", headers=as_("ann")).status_code == 404
    other = running_study(store)
    store.transition_study(other, StudyStatus.STOPPED)
    assert client.get(f"/api/v1/studies/{other}", headers=as_("ann")).status_code == 200
    assert client.delete(f"/api/v1/studies/{other}", headers=as_("ann")).status_code == 204
    assert client.get(f"/api/v1/studies/{other}", headers=as_("ann")).status_code == 404


def test_every_request_is_authenticated_even_from_the_cache(service: Any) -> None:
    client, store, _ = service
    study_id = running_study(store, owner="ann")
    url = f"/api/v1/studies/{study_id}"
    assert client.get(url, headers=as_("ann")).status_code == 200  # now cached
    assert client.get(url).status_code == 401
    assert client.get(url, headers=as_("not-a-token")).status_code == 401
    assert client.get(url, headers=as_("bob")).status_code == 404  # as if missing
    assert client.get(url, headers=as_("root")).status_code == 200  # admin
    for path in ("/trials", "/snapshot", "/trials/t000/results"):
        assert client.get(url + path, headers=as_("bob")).status_code == 404
        assert client.get(url + path).status_code == 401
        assert client.get(url + path, headers=as_("ann")).status_code == 200
    listed = client.get("/api/v1/studies", headers=as_("bob")).json()
    assert listed == {"items": [], "total": 0, "limit": 50, "offset": 0}
    mine = client.get("/api/v1/studies", headers=as_("ann")).json()
    assert [s["id"] for s in mine["items"]] == [study_id] and mine["total"] == 1


def test_keyset_paging_over_http(service: Any) -> None:
    client, store, _ = service
    study_id = running_study(store, trials=23)
    store.discard_trials(study_id, ["t004", "t005"], note="lost")
    url = f"/api/v1/studies/{study_id}/trials"
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 5}
    while True:
        page = client.get(url, params=params, headers=as_("ann")).json()
        assert page["total"] == 21
        seen += [t["trial_id"] for t in page["items"]]
        if page["next_after"] is None:
            break
        params["after"] = page["next_after"]
    assert seen == [f"t{i:03d}" for i in range(23) if i not in (4, 5)]
    bad = client.get(url, params={"order": "best", "after": 3}, headers=as_("ann"))
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "after"]


def test_snapshot_of_a_small_study_is_complete(service: Any) -> None:
    client, store, _ = service
    study_id = running_study(store, trials=4)
    store.add_results(study_id, [ResultWrite("t001", i, {"loss": 1.0 / i}) for i in (1, 2, 3)])
    doc = client.get(f"/api/v1/studies/{study_id}/snapshot", headers=as_("ann")).json()
    assert doc["complete"] is True
    assert [t["trial_id"] for t in doc["trials"]] == ["t000", "t001", "t002", "t003"]
    assert doc["curves"] == {"t001": [[1, 2, 3], [1.0, 0.5, 1.0 / 3]]}
    assert doc["study"]["num_results"] == 3
    assert doc["last_event_id"] == store.last_event_id(study_id)


def test_snapshot_of_a_large_study_is_a_sample(service: Any, monkeypatch: Any) -> None:
    client, store, cache = service
    monkeypatch.setattr(snapshot_module, "FULL_TRIALS", 20)
    monkeypatch.setattr(snapshot_module, "SAMPLE_TRIALS", 10)
    monkeypatch.setattr(snapshot_module, "MAX_CURVES", 8)
    study_id = running_study(store, trials=0)
    store.upsert_trials(
        study_id, [TrialUpdate(f"t{i:03d}", TrialState.PENDING, config={"x": i}) for i in range(60)]
    )
    store.add_results(
        study_id, [ResultWrite(f"t{i:03d}", 1, {"loss": float((i * 37) % 60)}) for i in range(50)]
    )
    finish_order = list(range(0, 40))[::-1]
    for i in finish_order:
        store.upsert_trials(study_id, [TrialUpdate(f"t{i:03d}", TrialState.TERMINATED)])
    url = f"/api/v1/studies/{study_id}/snapshot"
    doc = client.get(url, headers=as_("ann")).json()
    assert doc["complete"] is False
    assert doc["study"]["num_trials"] == 60
    assert 10 <= len(doc["trials"]) <= 18
    assert 1 <= len(doc["curves"]) <= 8
    best = doc["study"]["best_trial"]["trial_id"]
    assert best in doc["curves"]  # the best trial's curve is always drawn
    sent = {t["trial_id"] for t in doc["trials"]}
    assert set(doc["curves"]) <= sent
    running = [t for t in doc["trials"] if t["state"] == "RUNNING"]
    assert running and all(t["trial_id"] in doc["curves"] for t in running[:2])
    # best-so-far steps: finished trials in finish order, where the best improves
    values = [float((i * 37) % 60) for i in finish_order]
    expected, low = [], None
    for n, v in enumerate(values, start=1):
        if low is None or v < low:
            low = v
            expected.append([n, v])
    if expected[-1][0] != len(values):
        expected.append([len(values), low])
    assert doc["best_steps"] == expected
    # Cached like the study's document, and dropped when the study moves on.
    assert cache.get(study_id, "snapshot") is not None
    store.add_results(study_id, [ResultWrite("t055", 1, {"loss": -1.0})])
    cache.validate()
    assert cache.get(study_id, "snapshot") is None
    # Right after, the last one is served behind (a new one is built meanwhile); its
    # event id is older, and the events since it carry the change to the page.
    behind = client.get(url, headers=as_("ann")).json()
    assert behind == doc
    assert store.last_event_id(study_id) > behind["last_event_id"]
    # The one built in the background shows the change.
    deadline = time.monotonic() + 10
    while (entry := cache.get(study_id, "snapshot")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert entry is not None
    again = client.get(url, headers=as_("ann")).json()
    assert again["study"]["best_trial"]["trial_id"] == "t055" and "t055" in again["curves"]
    assert again["last_event_id"] == store.last_event_id(study_id)
    # Asked for fresh, it is built now.
    store.add_results(study_id, [ResultWrite("t056", 1, {"loss": -2.0})])
    fresh = client.get(url, headers={**as_("ann"), "Cache-Control": "no-cache"}).json()
    assert fresh["study"]["best_trial"]["trial_id"] == "t056"


def test_a_snapshot_is_served_behind_only_briefly(service: Any, monkeypatch: Any) -> None:
    client, store, cache = service
    monkeypatch.setattr(web_router, "SNAPSHOT_BEHIND_S", 0.0)
    study_id = running_study(store, trials=2)
    url = f"/api/v1/studies/{study_id}/snapshot"
    first = client.get(url, headers=as_("ann")).json()
    store.add_results(study_id, [ResultWrite("t001", 1, {"loss": 0.5})])
    cache.validate()
    # Too old to be served behind: built again before answering.
    again = client.get(url, headers=as_("ann")).json()
    assert again["study"]["num_results"] == first["study"]["num_results"] + 1
    assert "t001" in again["curves"]
