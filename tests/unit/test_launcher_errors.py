"""The launcher's errors: a refused token says so and names the variable to set; a Ray
that accepts connections but never answers costs a bounded wait, not a hang; the Jobs API
address it is given is the one it uses, whatever RAY_ADDRESS says."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from service import launcher as launcher_module
from service.errors import RayUnavailable
from service.launcher import RayJobLauncher, _explain, ray_auth_token


@pytest.fixture()
def token_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "no-such-token"))
    return monkeypatch


def test_the_token_is_read_the_way_ray_documents_it(
    token_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert ray_auth_token() == ("", None)
    path = tmp_path / "token"
    path.write_text("from-file\n")
    token_env.setenv("RAY_AUTH_TOKEN_PATH", str(path))
    assert ray_auth_token() == ("from-file", f"RAY_AUTH_TOKEN_PATH={path}")
    token_env.setenv("RAY_AUTH_TOKEN", "from-env")
    assert ray_auth_token() == ("from-env", "RAY_AUTH_TOKEN")


def test_refusals_name_the_variable_to_set(token_env: pytest.MonkeyPatch) -> None:
    from ray.exceptions import AuthenticationError

    missing = _explain(
        AuthenticationError("Authentication required: Unauthorized: Missing token"), "http://h:1"
    )
    assert "refused our token (401): we have none" in missing
    assert "RAY_AUTH_TOKEN" in missing
    token_env.setenv("RAY_AUTH_TOKEN", "wrong")
    wrong = _explain(
        AuthenticationError("Authentication failed: Forbidden: Invalid authentication token"),
        "http://h:1",
    )
    assert "refused our token (403) (read from RAY_AUTH_TOKEN)" in wrong
    assert "set RAY_AUTH_TOKEN" in wrong


def test_other_errors_are_not_called_refusals() -> None:
    text = _explain(ConnectionError("Failed to connect to Ray at address: http://h:40123"), "x")
    assert text.startswith("cannot reach the Ray Jobs API at x")
    assert "did not answer in time" in _explain(TimeoutError(), "x")


@contextlib.contextmanager
def http_server(status: int, answers: dict[str, bytes] | None = None) -> Iterator[str]:
    """A stand-in for the Jobs API: ``answers`` by path with 200, anything else ``status``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if answers and self.path in answers:
                body = answers[self.path]
                self.send_response(200)
            else:
                body = b"Forbidden: Invalid authentication token"
                self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_cluster_that_refuses_our_token(token_env: pytest.MonkeyPatch) -> None:
    token_env.setenv("RAY_AUTH_TOKEN", "wrong")
    with http_server(403) as url:
        launcher = RayJobLauncher(url)
        with pytest.raises(RayUnavailable, match="refused our token .*RAY_AUTH_TOKEN"):
            launcher.ping()
        with pytest.raises(RayUnavailable, match="refused our token .*RAY_AUTH_TOKEN"):
            launcher.info("hpo-study-1")


def test_a_cluster_that_never_answers_costs_a_bounded_wait(
    token_env: pytest.MonkeyPatch,
) -> None:
    token_env.setenv("RAY_AUTH_TOKEN", "some-token")
    token_env.setattr(launcher_module, "RAY_READ_TIMEOUT_S", 0.5)
    token_env.setattr(launcher_module, "RAY_SUBMIT_TIMEOUT_S", 0.5)
    with socket.socket() as silent:  # connections are accepted by the kernel, never served
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        launcher = RayJobLauncher(f"http://127.0.0.1:{silent.getsockname()[1]}")
        for call in (launcher.ping, lambda: launcher.info("hpo-study-1")):
            with pytest.raises(RayUnavailable, match="did not answer in time"):
                call()


def test_the_address_given_wins_over_ray_s_variables(token_env: pytest.MonkeyPatch) -> None:
    """Ray's JobSubmissionClient would use RAY_API_SERVER_ADDRESS or RAY_ADDRESS instead of
    the address it is given, and for a GCS address re-point this process's global GCS client
    at that cluster: a test process whose RAY_ADDRESS named a cluster since stopped then hung
    on its next Ray call and was ended by Ray."""
    import ray.experimental.internal_kv as internal_kv

    token_env.setenv("RAY_AUTH_TOKEN", "some-token")
    token_env.setenv("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:9")
    token_env.setenv("RAY_ADDRESS", "127.0.0.1:9")
    gcs_client_before = internal_kv.internal_kv_get_gcs_client()
    version = b'{"version": "4", "ray_version": "2.60.0", "ray_commit": "x"}'
    with http_server(404, {"/api/version": version}) as url:
        job = RayJobLauncher(url).info("hpo-study-1")
    assert job.state.value == "MISSING"  # our server answered: it has no such job
    assert internal_kv.internal_kv_get_gcs_client() is gcs_client_before
