"""The API's limits over HTTP (in-process, no Ray): 413 for large bodies, declared or
streamed; 422 with the field path for specs and parameters out of bounds; nothing stored."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.ray_local import free_port
from service.settings import Settings

LIMIT = 4096


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    # Ray answers nothing at port 9: nothing here may get as far as launching.
    settings = Settings(home=tmp_path, ray_address="http://127.0.0.1:9", max_body_bytes=LIMIT)
    with TestClient(create_app(settings)) as client:
        token = (tmp_path / "api_token").read_text().strip()
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def stored(client: TestClient) -> int:
    return int(client.get("/api/v1/studies").json()["total"])


def test_the_default_limit_is_one_mebibyte() -> None:
    assert Settings.model_fields["max_body_bytes"].default == 1_048_576


def test_a_declared_body_over_the_limit_is_413_json(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/studies",
        content=b"name: x\n" + b"#" * LIMIT,
        headers={"content-type": "application/yaml"},
    )
    assert answer.status_code == 413
    assert str(LIMIT) in answer.json()["detail"]
    assert stored(client) == 0


def test_a_streamed_body_over_the_limit_is_413_json(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(1000):
            yield b"#" * 1024

    answer = client.post(
        "/api/v1/studies", content=chunks(), headers={"content-type": "application/yaml"}
    )
    assert answer.status_code == 413
    assert "detail" in answer.json()
    assert stored(client) == 0


def test_a_body_at_the_limit_is_read(client: TestClient) -> None:
    body = b'{"name": "", "trainable": "x"}'
    body += b" " * (LIMIT - len(body))
    answer = client.post(
        "/api/v1/studies", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422  # read and parsed: refused for what it says
    assert answer.json()["detail"][0]["loc"] == ["body", "name"]


def test_the_limit_applies_to_every_route(client: TestClient) -> None:
    answer = client.post("/api/v1/studies/1/stop", content=b"x" * (LIMIT + 1))
    assert answer.status_code == 413
    assert "detail" in answer.json()


def test_a_spec_over_a_bound_is_422_with_the_path(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/studies", json={"name": "x", "trainable": "branin", "config": {"k" * 201: 1}}
    )
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "config", "k" * 50 + "…"]
    assert "key of 201 characters" in problem["msg"]
    space = {"x": {"type": "uniform", "low": 0, "high": 1}}
    answer = client.post(
        "/api/v1/studies", json={"name": "x", "trainable": "branin", "search_space": space}
    )
    assert answer.status_code == 503  # within the bounds: it gets as far as asking Ray
    assert "detail" in answer.json()
    assert stored(client) == 0


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/studies/99999999999999999999999", {}),
        ("/api/v1/studies/2147483648", {}),
        ("/api/v1/studies/0", {}),
        ("/api/v1/studies?offset=99999999999999999999", {}),
        ("/api/v1/studies?owner=" + "o" * 300, {}),
        ("/api/v1/studies?owner=a%00b", {}),
        ("/api/v1/studies/{id}/trials/a%00b/results", {}),
        ("/api/v1/studies/{id}/trials?offset=99999999999999999999", {}),
        ("/api/v1/studies/{id}/trials/" + "t" * 300 + "/results", {}),
        ("/api/v1/studies/{id}/events?after=99999999999999999999", {}),
        ("/api/v1/studies/{id}/events", {"Last-Event-ID": "9" * 30}),
    ],
)
def test_parameters_out_of_bounds_are_422(
    client: TestClient, path: str, headers: dict[str, str]
) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    study = store.create_study(name="s", spec={}, metric="loss", mode="min", owner="local")
    encoded = {key: value.encode() for key, value in headers.items()}
    answer = client.get(path.replace("{id}", str(study.id)), headers=encoded)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


def test_a_last_event_id_of_other_digits_is_422_over_http(tmp_path: Path) -> None:
    """ "²" is a digit to str.isdigit() but not to int(); a real server hands the header
    over as Latin-1 (the test client would re-encode it as UTF-8)."""
    settings = Settings(home=tmp_path, ray_address="http://127.0.0.1:9", job_poll_interval_s=3600)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            time.sleep(0.1)
        token = (tmp_path / "api_token").read_text().strip()
        study = app.state.store.create_study(
            name="s", spec={}, metric="loss", mode="min", owner="local"
        )
        for value in ("\u00b2".encode("latin-1"), b"9" * 30, b"-1"):
            answer = httpx.get(
                f"{url}/api/v1/studies/{study.id}/events",
                headers={b"Authorization": f"Bearer {token}".encode(), b"Last-Event-ID": value},
                timeout=10,
            )
            assert answer.status_code == 422, (value, answer.text)
            assert "Last-Event-ID" in answer.json()["detail"]
    finally:
        server.should_exit = True
        thread.join(10)
