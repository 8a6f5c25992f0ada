"""PostgreSQL goes away for 10 s in the middle of a study: the study still completes and
the store ends up with exactly the results the trials reported, none lost, none doubled."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import pytest

from service.api.schemas import StudyPublic
from service.client import ApiError, HpoClient, ServiceUnreachable
from service.launcher import RayJobLauncher
from service.store import open_store
from tests.faults.conftest import PgService
from tests.fixtures.watch import TERMINAL, noop_spec

pytestmark = [pytest.mark.ray, pytest.mark.postgres]

OUTAGE_S = 10.0
TRIALS, ITERATIONS, SLEEP_S = 8, 20, 0.25  # 40 s of trial time, 2 trials at a time


def reported_lines(report_log: Path) -> list[tuple[str, int]]:
    """What the trials reported: one "trial_id iteration" line before each report."""
    if not report_log.exists():
        return []
    pairs = []
    for line in report_log.read_text().splitlines():
        trial_id, iteration = line.split()
        pairs.append((trial_id, int(iteration)))
    return pairs


def wait_for_reports(report_log: Path, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(reported_lines(report_log)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} reports after {timeout_s} s"
        time.sleep(0.1)


def wait_until_finished(client: HpoClient, study_id: int, timeout_s: float) -> StudyPublic:
    """Poll the study until it is finished; the service answers 503 while the database is
    away, which only means "ask again"."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            study = client.study(study_id)
            if study.status in TERMINAL:
                return study
        except ApiError as error:
            if error.status_code != 503:
                raise
        except ServiceUnreachable:
            pass
        assert time.monotonic() < deadline, f"study {study_id} not finished after {timeout_s} s"
        time.sleep(0.5)


def stored_pairs(database_url: str, study_id: int) -> list[tuple[str, int]]:
    store = open_store(database_url)
    try:
        pairs = []
        for trial in store.list_trials(study_id, limit=10_000).items:
            pairs += [
                (trial.trial_id, r.iteration) for r in store.get_results(study_id, trial.trial_id)
            ]
        return pairs
    finally:
        store.close()


def test_a_study_survives_postgres_stopping_for_10_s_without_losing_results(
    pg_service: PgService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live, postgres = pg_service.live, pg_service.postgres
    report_log = tmp_path / "reports.log"
    spec = noop_spec(
        "postgres-outage",
        trials=TRIALS,
        iterations=ITERATIONS,
        sleep_s=SLEEP_S,
        config={"iterations": ITERATIONS, "sleep_s": SLEEP_S, "report_log": str(report_log)},
    )
    with live.client() as client:
        study = client.submit(spec)
        wait_for_reports(report_log, 20, timeout_s=120)  # trials are running, results flow

        with caplog.at_level(logging.WARNING, logger="service.api.app"), postgres.outage():
            before = len(reported_lines(report_log))
            time.sleep(OUTAGE_S)
            during = len(reported_lines(report_log)) - before
        assert during > 0, "the trials stopped reporting while the database was away"

        finished = wait_until_finished(client, study.id, timeout_s=180)
        if finished.status != "COMPLETED":
            logs = RayJobLauncher(live.ray.dashboard_url).logs_tail(finished.ray_job_id or "")
            pytest.fail(f"study ended {finished.status}: {finished.error}\nrunner log:\n{logs}")

    reported = reported_lines(report_log)
    stored = stored_pairs(live.database_url, study.id)
    assert len(reported) >= TRIALS * ITERATIONS
    missing = sorted(set(reported) - set(stored))
    extra = sorted(set(stored) - set(reported))
    assert not missing, f"{len(missing)} reported results are not in the store: {missing[:10]}"
    assert not extra, f"{len(extra)} stored results were never reported: {extra[:10]}"
    doubled = [pair for pair, n in Counter(stored).items() if n > 1]
    assert not doubled, f"results stored twice: {doubled[:10]}"
    assert finished.num_results == len(set(reported))
    assert finished.trial_counts.get("TERMINATED") == TRIALS
    # The service's job monitor met the outage, logged it and carried on.
    assert "reconciling studies with Ray jobs failed" in caplog.text
    # The runner's writer met the outage, kept the results and drained them itself:
    # nothing was left to replay.
    runner_log = RayJobLauncher(live.ray.dashboard_url).logs_tail(
        finished.ray_job_id or "", chars=10_000_000
    )
    assert "store unavailable" in runner_log
    assert not list((live.home / "spill").glob("*.jsonl"))
