"""A service whose Ray token is wrong or missing, against the session's real Ray cluster
(token auth on): /readyz and study submission answer 503 at once, saying that the
cluster refused our token and which variable to set; no study is left half-created."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.ray_local import free_port
from tests.fixtures.ray_cluster import RayCluster

pytestmark = pytest.mark.ray

ADMIN_TOKEN = f"hpo_test_admin_{secrets.token_urlsafe(24)}"
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# "At once": a request that takes longer fails with a timeout (Ray refuses a token in
# milliseconds; a hang would be a missing timeout on a call to Ray).
QUICK_S = 10.0

SPEC = {
    "name": "token-check",
    "trainable": "branin",
    "search_space": {"x1": {"type": "uniform", "low": -5, "high": 10}},
    "num_samples": 1,
    "config": {"epochs": 1},
}


@contextlib.contextmanager
def service_process(home: Path, ray: RayCluster, **env: str) -> Iterator[str]:
    """``python -m service serve`` on the session cluster, with this environment."""
    port = free_port()
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HPO_", "RAY_AUTH_TOKEN", "RAY_ADDRESS", "RAY_API_SERVER"))
    }
    full_env = {
        **inherited,
        "RAY_AUTH_MODE": "token",
        "HPO_HOME": str(home),
        "HPO_HOST": "127.0.0.1",
        "HPO_PORT": str(port),
        "HPO_RAY_ADDRESS": ray.dashboard_url,
        "HPO_RUNNER_PYTHON": sys.executable,
        "HPO_API_TOKENS": f"{ADMIN_TOKEN}=admin:admin",
        "HPO_JOB_POLL_INTERVAL_S": "3600",
        **env,
    }
    log = (home / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"the service did not start:\n{(home / 'service.log').read_text()[-3000:]}"
                )
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def quick(method: str, url: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, url, headers=HEADERS, timeout=QUICK_S, **kwargs)


def assert_refused_token_message(text: str, source: str) -> None:
    assert "refused our token" in text, text
    assert "RAY_AUTH_TOKEN" in text, text
    assert source in text, text


@pytest.mark.parametrize(
    ("case", "source"),
    [("wrong", "read from RAY_AUTH_TOKEN"), ("missing", "we have none")],
)
def test_a_refused_ray_token_is_a_clear_503(
    ray_cluster: RayCluster, tmp_path: Path, case: str, source: str
) -> None:
    if case == "wrong":
        env = {"RAY_AUTH_TOKEN": "wrong-" + secrets.token_hex(16)}
    else:  # no variable, and neither the named file nor ~/.ray/auth_token exists
        env = {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "no-token"), "HOME": str(tmp_path)}
    with service_process(tmp_path, ray_cluster, **env) as url:
        ready = quick("GET", f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "ok"
        assert_refused_token_message(ready.json()["checks"]["ray"], source)
        assert_refused_token_message(ready.json()["detail"], source)
        anonymous = httpx.get(f"{url}/readyz", timeout=30)  # a probe without a token
        assert anonymous.status_code == 503
        assert anonymous.json()["checks"]["ray"] == "unavailable"

        created = quick("POST", f"{url}/api/v1/studies", json=SPEC)
        assert created.status_code == 503, created.text
        assert_refused_token_message(created.json()["detail"], source)
        listed = httpx.get(f"{url}/api/v1/studies", headers=HEADERS, timeout=30).json()
        assert listed["total"] == 0, "a refused submission stored a study"


def test_without_the_capacity_check_the_study_is_failed_with_the_reason(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    """With HPO_VALIDATE_CAPACITY=false nothing asks Ray before the study is stored: the
    launch is refused, and the study is FAILED with the reason, never left PENDING."""
    env = {"RAY_AUTH_TOKEN": "wrong-" + secrets.token_hex(16), "HPO_VALIDATE_CAPACITY": "false"}
    with service_process(tmp_path, ray_cluster, **env) as url:
        created = quick("POST", f"{url}/api/v1/studies", json=SPEC)
        assert created.status_code == 503, created.text
        assert_refused_token_message(created.json()["detail"], "RAY_AUTH_TOKEN")
        listed = httpx.get(f"{url}/api/v1/studies", headers=HEADERS, timeout=30).json()
        for study in listed["items"]:
            assert study["status"] == "FAILED"
            assert_refused_token_message(study["error"], "RAY_AUTH_TOKEN")
