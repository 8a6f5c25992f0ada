"""The event stream's mechanics on a real server and a real SQLite store, without Ray:
heartbeats, many clients through one shared feed, catch-up from the store, the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from httpx_sse import connect_sse

from service.api.app import create_app
from service.events import EventHub
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


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, StudyStore, object]]:
    """A service whose Ray address answers nothing (no study is launched here)."""
    settings = Settings(
        home=tmp_path, ray_address=f"http://127.0.0.1:{free_port()}", job_poll_interval_s=3600
    )
    app = create_app(settings)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.1)
    # No token configured: the embedded default made one; the URL's credentials carry it.
    token = (tmp_path / "api_token").read_text().strip()
    url = f"http://local:{token}@127.0.0.1:{port}"
    store = open_store(settings.resolved_database_url)
    try:
        yield url, store, app
    finally:
        uv.should_exit = True
        thread.join(30)
        store.close()


def write_study(store: StudyStore, study_id: int, trials: int, iterations: int) -> None:
    store.transition_study(study_id, StudyStatus.RUNNING)
    for t in range(trials):
        store.upsert_trials(study_id, [TrialUpdate(f"t{t}", TrialState.RUNNING, config={"x": t})])
        for i in range(1, iterations + 1):
            store.add_results(study_id, [ResultWrite(f"t{t}", i, {"loss": 1.0 / i})])
            time.sleep(0.005)
        store.upsert_trials(study_id, [TrialUpdate(f"t{t}", TrialState.TERMINATED)])
    store.transition_study(study_id, StudyStatus.COMPLETED)


def read_all(url: str, study_id: int, last_event_id: str | None = None) -> list[tuple[int, str]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with (
        httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=60)) as http,
        connect_sse(http, "GET", f"/api/v1/studies/{study_id}/events", headers=headers) as src,
    ):
        return [(int(e.id), e.event) for e in src.iter_sse() if e.data]


def test_heartbeats_on_an_idle_stream(server: tuple[str, StudyStore, object]) -> None:
    url, store, app = server
    app.state.sse_heartbeat_s = 0.3  # type: ignore[attr-defined]
    study = store.create_study(name="idle", spec={}, metric="loss", mode="min")
    with httpx.stream("GET", f"{url}/api/v1/studies/{study.id}/events", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith(":"):
                break
    assert lines[0].startswith("id: ") and "event: study" in lines
    assert lines[-1].startswith(": ping")


def test_many_clients_share_a_feed_and_late_ones_catch_up(
    server: tuple[str, StudyStore, object],
) -> None:
    url, store, app = server
    # A small window, so late clients must read the start from the store.
    app.state.event_hub = EventHub(store, poll_s=0.05, keep=10)  # type: ignore[attr-defined]
    study = store.create_study(name="busy", spec={}, metric="loss", mode="min")
    received: dict[int, list[tuple[int, str]]] = {}

    def client(n: int) -> None:
        received[n] = read_all(url, study.id)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads[:4]:
        thread.start()
    writer = threading.Thread(target=write_study, args=(store, study.id, 3, 20))
    writer.start()
    time.sleep(0.3)
    for thread in threads[4:]:  # join while the study runs, from its first event
        thread.start()
    writer.join()
    for thread in threads:
        thread.join(60)
    expected = [(e.id, e.kind) for e in store.events_after(study.id, 0, 10_000)]
    assert len([k for _, k in expected if k == "result"]) == 60
    for n in range(8):
        assert received[n] == expected, f"client {n}"
    # Resuming from any point gives exactly the rest.
    middle = expected[len(expected) // 3][0]
    assert read_all(url, study.id, str(middle)) == [e for e in expected if e[0] > middle]
