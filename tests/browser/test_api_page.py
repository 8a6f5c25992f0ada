"""The study page in headless Chromium on studies written straight into the store (no Ray):
a small one (complete snapshot: the page sorts and charts every trial) and a large one
(sampled snapshot: the table pages through the server, the counts come from the API), both
followed live while the "runner" (this test, through the store) writes."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from service.api import snapshot as snapshot_module
from service.api.app import create_app
from service.ray_local import free_port
from service.settings import Settings
from service.store import (
    ResultWrite,
    StudyStatus,
    StudyStore,
    TrialState,
    TrialUpdate,
    open_store,
)

SPEC = {
    "name": "page",
    "trainable": "branin",
    "metric": "loss",
    "mode": "min",
    "num_samples": 100,
    "search_space": {
        "x1": {"type": "uniform", "low": -5, "high": 10},
        "x2": {"type": "uniform", "low": 0, "high": 15},
    },
}


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, str, StudyStore]]:
    settings = Settings(
        home=tmp_path,
        ray_address=f"http://127.0.0.1:{free_port()}",
        validate_capacity=False,
        job_poll_interval_s=3600,
    )
    port = free_port()
    uv = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.1)
    store = open_store(settings.resolved_database_url)
    try:
        yield url, (tmp_path / "api_token").read_text().strip(), store
    finally:
        uv.should_exit = True
        thread.join(30)
        store.close()


def grow(store: StudyStore, study_id: int, first: int, count: int, rng: random.Random) -> None:
    """``count`` trials as the runner writes them: created, 5 results, ended."""
    ids = [f"t{i:04d}" for i in range(first, first + count)]
    configs = {t: {"x1": rng.uniform(-5, 10), "x2": rng.uniform(0, 15)} for t in ids}
    store.upsert_trials(
        study_id, [TrialUpdate(t, TrialState.RUNNING, config=configs[t]) for t in ids]
    )
    store.add_results(
        study_id,
        [
            ResultWrite(t, i, {"loss": (configs[t]["x1"] - 2) ** 2 + configs[t]["x2"] / i})
            for i in range(1, 6)
            for t in ids
        ],
    )
    ended = [TrialUpdate(t, rng.choice([TrialState.TERMINATED, TrialState.PRUNED])) for t in ids]
    store.upsert_trials(study_id, ended)


def open_page(tab: Any, url: str, token: str, study_id: int) -> None:
    tab.goto(f"{url}/studies/{study_id}?token={token}")
    tab.wait_for_selector("body[data-rendered=full]", timeout=30_000)


def summary(url: str, token: str, study_id: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Cache-Control": "no-cache"}
    return httpx.get(f"{url}/api/v1/studies/{study_id}", headers=headers).json()


def finish(tab: Any, store: StudyStore, study_id: int, url: str, token: str) -> dict[str, Any]:
    store.transition_study(study_id, StudyStatus.COMPLETED)
    tab.wait_for_function(
        "document.querySelector('#status').innerText === 'COMPLETED'", timeout=20_000
    )
    final = summary(url, token, study_id)
    tab.wait_for_function(
        f"document.querySelector('#results').innerText === '{final['num_results']}'",
        timeout=20_000,
    )
    return final


def test_small_study_page_is_complete_and_live(server: Any, page: Any) -> None:  # noqa: F811
    url, token, store = server
    rng = random.Random(1)
    study = store.create_study(name="small", spec=SPEC, metric="loss", mode="min")
    store.transition_study(study.id, StudyStatus.RUNNING)
    grow(store, study.id, 0, 12, rng)
    open_page(page, url, token, study.id)
    assert page.locator("#trials-table tbody tr").count() == 12
    assert page.locator("#curves").get_attribute("data-series") == "12"
    grow(store, study.id, 12, 6, rng)  # live: arrives through the event stream
    page.wait_for_function(
        "document.querySelectorAll('#trials-table tbody tr').length === 18", timeout=20_000
    )
    final = finish(page, store, study.id, url, token)
    assert page.locator("#progress").inner_text().strip() == f"{final['num_trials']}/100"
    assert int(page.locator("#parallel").get_attribute("data-lines") or 0) == 18
    page.locator("#trials-table th[data-key='best']").click()
    values = [
        float(t) for t in page.locator("#trials-table tbody tr td:nth-child(3)").all_inner_texts()
    ]
    assert values == sorted(values)
    assert values[0] == pytest.approx(final["best_trial"]["best_value"], rel=1e-3)


def test_large_study_page_draws_a_sample(server: Any, page: Any, monkeypatch: Any) -> None:  # noqa: F811
    url, token, store = server
    monkeypatch.setattr(snapshot_module, "FULL_TRIALS", 50)
    monkeypatch.setattr(snapshot_module, "SAMPLE_TRIALS", 40)
    rng = random.Random(2)
    study = store.create_study(name="large", spec=SPEC, metric="loss", mode="min")
    store.transition_study(study.id, StudyStatus.RUNNING)
    for first in range(0, 300, 50):
        grow(store, study.id, first, 50, rng)
    open_page(page, url, token, study.id)
    doc = summary(url, token, study.id)
    assert page.locator("#progress").inner_text().strip() == "300/300"
    assert page.locator("#results").inner_text() == str(doc["num_results"])
    assert 40 <= int(page.locator("#parallel").get_attribute("data-lines") or 0) < 300
    best = doc["best_trial"]
    assert page.locator("#best").inner_text().startswith(f"{best['best_value']:.5g}"[:4])
    assert int(page.locator("#best-chart").get_attribute("data-points") or 0) >= 2
    # The table pages through the server: 50 a page, best first when sorted by best.
    assert page.locator("#trials-table tbody tr").count() == 50
    page.locator("#trials-table th[data-key='best']").click()
    page.wait_for_function(
        f"document.querySelector('#trials-table tbody tr').dataset.trial === '{best['trial_id']}'",
        timeout=10_000,
    )
    page.locator("#next-page").click()
    page.wait_for_function(
        "document.querySelector('.pager span').innerText.startsWith('51–100 of 300')",
        timeout=10_000,
    )
    # Live: new trials arrive through the event stream; the counts follow.
    grow(store, study.id, 300, 20, rng)
    final = finish(page, store, study.id, url, token)
    assert page.locator("#progress").inner_text().strip() == f"{final['num_trials']}/320"
