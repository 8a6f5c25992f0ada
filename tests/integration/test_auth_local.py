"""Authentication of a service started with no token configured (the embedded default), the
CLI's token, and the rate limit on study creation: real HTTP, real SQLite, no Ray needed."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from service.api.app import create_app
from service.ray_local import free_port
from service.settings import Settings


@dataclass(frozen=True)
class Bare:
    url: str
    home: Path


@contextlib.contextmanager
def bare_service(home: Path, **settings: Any) -> Iterator[Bare]:
    """A service whose Ray address answers nothing: enough for auth (no study launches)."""
    config = Settings(
        home=home,
        ray_address=f"http://127.0.0.1:{free_port()}",
        job_poll_interval_s=3600,
        validate_capacity=False,
        **settings,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.1)
    try:
        yield Bare(url, home)
    finally:
        server.should_exit = True
        thread.join(30)


def hpo(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("HPO_TOKEN", "HPO_HOME", "HPO_URL")}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**clean, "COLUMNS": "200", **env},
    )


def test_embedded_default_makes_a_private_token_the_cli_finds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with bare_service(home) as service:
        path = home / "api_token"
        token = path.read_text().strip()
        assert token.startswith("hpo_") and len(token) > 40
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert httpx.get(f"{service.url}/api/v1/studies").status_code == 401
        answer = httpx.get(
            f"{service.url}/api/v1/studies", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200

        # `hpo token show`: the token the CLI would use, alone on the last line.
        shown = hpo("token", "show", cwd=tmp_path, HPO_HOME=str(home))
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[-1] == token
        assert str(path) in shown.stderr
        overridden = hpo("token", "show", cwd=tmp_path, HPO_HOME=str(home), HPO_TOKEN="t-env")
        assert overridden.stdout.splitlines()[-1] == "t-env"
        explicit = hpo("token", "show", "--token", "t-cli", cwd=tmp_path, HPO_TOKEN="t-env")
        assert explicit.stdout.splitlines()[-1] == "t-cli"
        none = hpo("token", "show", cwd=tmp_path, HPO_HOME=str(tmp_path / "elsewhere"))
        assert none.returncode == 1 and "no API token" in none.stderr

        # The CLI picks the local token up by itself; without it, 401 and what to do.
        listed = hpo("studies", cwd=tmp_path, HPO_HOME=str(home), HPO_URL=service.url)
        assert listed.returncode == 0, listed.stderr
        assert "0 of 0" in listed.stdout
        refused = hpo("studies", cwd=tmp_path, HPO_HOME=str(tmp_path), HPO_URL=service.url)
        assert refused.returncode == 1
        assert "401" in refused.stderr and "hpo token show" in refused.stderr
        assert "Traceback" not in refused.stderr

    # The next start keeps the same token: the CLI's copy stays valid.
    with bare_service(home) as again:
        assert (home / "api_token").read_text().strip() == token
        answer = httpx.get(f"{again.url}/api/v1/studies", auth=("", token))
        assert answer.status_code == 200


def test_configured_tokens_replace_the_local_token_file(tmp_path: Path) -> None:
    token = "t0k3n-of-alice-" + "x" * 16
    with bare_service(tmp_path, api_tokens=f"{token}=alice") as service:
        assert not (tmp_path / "api_token").exists()
        answer = httpx.get(
            f"{service.url}/api/v1/studies", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200


def serve_once(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``hpo serve`` run to its exit (these settings make it refuse to start)."""
    return subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**env, "COLUMNS": "300"},
    )


def test_a_non_loopback_service_without_tokens_refuses_to_start(tmp_path: Path) -> None:
    done = serve_once(
        tmp_path,
        {
            **{k: v for k, v in os.environ.items() if not k.startswith("HPO_")},
            "HPO_HOME": str(tmp_path / "home"),
            "HPO_HOST": "0.0.0.0",
            "HPO_RAY_ADDRESS": f"http://127.0.0.1:{free_port()}",
        },
    )
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "api_token").exists()


def test_weak_tokens_refuse_to_start(tmp_path: Path) -> None:
    done = serve_once(
        tmp_path,
        {**os.environ, "HPO_HOME": str(tmp_path), "HPO_API_TOKENS": "changeme=alice"},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "well-known default" in done.stderr and "HPO_ENV=development" in done.stderr
    assert "changeme=" not in done.stderr


def test_study_creation_is_rate_limited_per_principal(tmp_path: Path) -> None:
    alice, bob = "alice-token-" + "a" * 20, "bob-token-" + "b" * 20
    with bare_service(
        tmp_path,
        api_tokens=f"{alice}=alice,{bob}=bob",
        study_create_per_minute=0.6,
        study_create_burst=2,
    ) as service:

        def create(token: str) -> httpx.Response:
            return httpx.post(
                f"{service.url}/api/v1/studies",
                json={"name": "x", "trainable": "no-such-trainable"},
                headers={"Authorization": f"Bearer {token}"},
            )

        assert [create(alice).status_code for _ in range(2)] == [422, 422]
        limited = create(alice)
        assert limited.status_code == 429
        assert "alice" in limited.json()["detail"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 100
        assert create(bob).status_code == 422  # another principal has its own bucket
        listed = httpx.get(
            f"{service.url}/api/v1/studies", headers={"Authorization": f"Bearer {alice}"}
        )
        assert listed.status_code == 200  # reads are not limited
