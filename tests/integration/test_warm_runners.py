"""Warm runners on the session's real Ray cluster: a study submitted while one waits runs
in its job, another takes its place, and the service stops the one left when it stops."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

from tests.fixtures.ray_cluster import RayCluster
from tests.fixtures.service import running_service, wait_for_status
from tests.fixtures.watch import TERMINAL, noop_spec

pytestmark = pytest.mark.ray

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout_s: float = 120) -> T:
    deadline = time.monotonic() + timeout_s
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout_s} s")
        time.sleep(0.2)
    return found


def running_warm_runners(jobs: JobSubmissionClient) -> set[str]:
    return {
        str(job.submission_id)
        for job in jobs.list_jobs()
        if (job.metadata or {}).get("hpo_warm_runner") == "1" and job.status == JobStatus.RUNNING
    }


def test_a_study_runs_in_a_warm_runner_that_is_then_replaced(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    jobs = JobSubmissionClient(ray_cluster.dashboard_url)
    before = running_warm_runners(jobs)
    with running_service(ray_cluster, tmp_path / "home", warm_runners=1) as service:
        first = eventually(lambda: (running_warm_runners(jobs) - before) or None, "warm runner")
        assert len(first) == 1
        (warm_job,) = first
        with service.client() as client:
            study = client.submit(noop_spec("warm", trials=2, iterations=3, sleep_s=0.0))
            assert study.ray_job_id == warm_job
            assert study.ray_dashboard_url is not None
            assert study.ray_dashboard_url.endswith(f"/#/jobs/{warm_job}")
            done = wait_for_status(client, study.id, TERMINAL, 300)
            assert done.status == "COMPLETED", done.error
            assert done.num_results == 6 and done.ray_job_id == warm_job
        # The study's run was that job's, and it ended with the study.
        assert eventually(
            lambda: jobs.get_job_status(warm_job) if jobs.get_job_status(warm_job).is_terminal()
            else None,
            "end of the warm runner's job",
        ) == JobStatus.SUCCEEDED  # fmt: skip
        assert f"warm runner {warm_job}: running study {study.id}" in jobs.get_job_logs(warm_job)
        replacement = eventually(
            lambda: (running_warm_runners(jobs) - before - {warm_job}) or None, "replacement"
        )
        assert len(replacement) == 1
    # The service stopped the runner that no study took.
    (left,) = replacement
    assert eventually(
        lambda: jobs.get_job_status(left) if jobs.get_job_status(left).is_terminal() else None,
        "stop of the unused warm runner",
        timeout_s=60,
    ) == JobStatus.STOPPED  # fmt: skip
