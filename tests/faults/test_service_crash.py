"""Fault 1: the service is killed (SIGKILL) three times while a study runs.

The service runs as a user runs it (``python -m service serve``) on the embedded
default: its own local Ray head (with dashboard and token auth) and SQLite. The Ray head
lives in a session of its own, so it outlives the killed service; the restarted service
adopts it, and the study's runner (a Ray job that writes to the store itself) never
notices. At the end the store holds exactly what the trials reported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.client import HpoClient
from service.ray_local import free_port
from tests.faults.ledger import ledger, wait_for
from tests.fixtures.service import session_tokens, tokens_setting
from tests.fixtures.watch import noop_spec

pytestmark = pytest.mark.ray

TRIALS, ITERATIONS, SLEEP_S = 6, 25, 0.5


class ServiceProcess:
    """``python -m service serve`` on a home directory, started and killed at will."""

    def __init__(self, home: Path, port: int, tokens: dict[str, str]) -> None:
        self.home, self.port, self.tokens = home, port, tokens
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> HpoClient:
        return HpoClient(self.url, token=self.tokens["admin"])

    def start(self, timeout_s: float = 180) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RAY_ADDRESS", "RAY_AUTH", "HPO_"))
        }
        env.update(
            HPO_HOME=str(self.home),
            HPO_API_TOKENS=tokens_setting(self.tokens).get_secret_value(),
            HPO_RAY_NUM_CPUS="2",
            HPO_JOB_POLL_INTERVAL_S="1",
        )
        self.starts += 1
        log = (self.home / f"service-{self.starts}.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, f"the service exited; see {log.name}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the service did not start; see {log.name}"
            time.sleep(0.3)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown hook runs
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(tmp_path / "home", free_port(), session_tokens())
    service.home.mkdir()
    try:
        yield service
    finally:
        service.stop()
        # A head left behind (the last service was killed): stop it as a service would.
        from service.ray_local import LocalRayHead

        head = LocalRayHead(service.home / "ray")
        if head.adopt():
            head.stop()


def test_killing_the_service_three_times_loses_nothing(
    service: ServiceProcess, tmp_path: Path
) -> None:
    report_log = tmp_path / "reports.log"
    spec = noop_spec(
        "service-crash",
        trials=TRIALS,
        iterations=ITERATIONS,
        sleep_s=SLEEP_S,
        config={"iterations": ITERATIONS, "sleep_s": SLEEP_S, "report_log": str(report_log)},
    )
    total = TRIALS * ITERATIONS
    service.start()
    with service.client() as client:
        study = client.submit(spec)
    first_job, first_dashboard = study.ray_job_id, study.ray_dashboard_url
    timeline = [f"submitted study {study.id} as {first_job}"]

    def results_so_far() -> int:
        with service.client() as client:
            return client.study(study.id).num_results

    # At the start (right after the submit), in the middle, near the end.
    for share in (0.0, 0.5, 0.8):
        if share:
            target = share * total
            wait_for(f"{share:.0%} of the results", lambda t=target: results_so_far() >= t)
        service.kill9()
        timeline.append(f"killed at {results_so_far_from_log(report_log)} reports")
        down = time.monotonic()
        service.start()
        with service.client() as client:
            now = client.study(study.id)
        timeline.append(
            f"restarted in {time.monotonic() - down:.1f} s: study {now.status}, "
            f"{now.num_results} results stored"
        )
        # The study's driver does not need the service: it may finish while it is down.
        assert now.status in {"PENDING", "RUNNING", "COMPLETED"}, timeline

    with service.client() as client:
        done = wait_for(
            "the study to complete",
            lambda: (s := client.study(study.id)).status in {"COMPLETED", "FAILED"} and s,
            timeout_s=300,
        )
        trials = client.trials(study.id, limit=100).items
    assert done.status == "COMPLETED", done.error
    # The same run all along: the restarted services adopted the head and its job.
    assert (done.ray_job_id, done.ray_dashboard_url, done.restarts) == (
        first_job,
        first_dashboard,
        0,
    )
    assert len(trials) == TRIALS
    assert all(t.state == "TERMINATED" and t.num_results == ITERATIONS for t in trials)
    books = ledger(f"sqlite:///{service.home / 'hpo.db'}", study.id, report_log)
    print("\n".join([*timeline, books.summary()]))
    assert sum(books.reported.values()) == total  # no trial ran anything twice
    assert books.stored == books.reported  # exactly what the trials reported, once each


def results_so_far_from_log(report_log: Path) -> int:
    return len(report_log.read_text().splitlines()) if report_log.exists() else 0
