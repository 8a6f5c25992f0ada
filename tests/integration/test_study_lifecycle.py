"""End to end through the REST API: spec -> store -> Ray job -> Tune -> results, on real Ray."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from ray.job_submission import JobSubmissionClient

from service.client import HpoClient
from tests.fixtures.service import LiveService, wait_for_status

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
BRANIN_OPTIMUM = 0.397887
TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}


def branin_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "branin-test",
        "trainable": "branin",
        "search_space": {
            "x1": {"type": "uniform", "low": -5, "high": 10},
            "x2": {"type": "uniform", "low": 0, "high": 15},
        },
        "algorithm": {"name": "random", "seed": 1},
        "num_samples": 6,
        "max_concurrent_trials": 2,
        "config": {"epochs": 3},
    }
    spec.update(overrides)
    return spec


def run_to_end(client: HpoClient, spec: dict[str, Any], timeout_s: float = 300) -> Any:
    study = client.submit(spec)
    assert study.status in {"PENDING", "RUNNING"}
    return wait_for_status(client, study.id, TERMINAL, timeout_s)


def test_branin_hyperopt_yaml_example_end_to_end(live_service: LiveService) -> None:
    body = (REPO / "examples" / "branin-hyperopt.yaml").read_bytes()
    answer = httpx.post(
        f"{live_service.url}/api/v1/studies",
        content=body,
        headers={"content-type": "application/yaml"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["ray_job_id"] == f"hpo-study-{created['id']}"
    assert created["ray_dashboard_url"].endswith(f"/#/jobs/{created['ray_job_id']}")

    with live_service.client() as client:
        study = wait_for_status(client, created["id"], TERMINAL, 400)
        assert study.status == "COMPLETED", study.error
        spec = yaml.safe_load(body)
        trials = client.trials(study.id, limit=1000)
        assert trials.total == spec["num_samples"]
        for trial in trials.items:
            assert trial.state == "TERMINATED"
            results = client.results(study.id, trial.trial_id)
            assert [r.iteration for r in results.items] == list(
                range(1, spec["config"]["epochs"] + 1)
            )
            assert all(r.metrics["loss"] >= BRANIN_OPTIMUM - 1e-9 for r in results.items)
        assert study.best_trial is not None
        assert study.best_trial.best_value >= BRANIN_OPTIMUM - 1e-9
        assert study.num_results == sum(t.num_results for t in trials.items)

    # The study is a Ray job, named after it, with the study in its metadata.
    ray_jobs = JobSubmissionClient(live_service.ray.dashboard_url)
    job = next(j for j in ray_jobs.list_jobs() if j.submission_id == created["ray_job_id"])
    assert job.metadata["hpo_study_id"] == str(created["id"])
    # The runner records the outcome, then its process exits: give it a moment.
    deadline = time.monotonic() + 60
    while not ray_jobs.get_job_status(job.submission_id).is_terminal():
        assert time.monotonic() < deadline, "the study's Ray job did not end"
        time.sleep(0.5)
    assert ray_jobs.get_job_status(job.submission_id).value == "SUCCEEDED"


@pytest.mark.parametrize(
    ("algorithm", "scheduler", "extra"),
    [
        ("random", "fifo", {}),
        (
            "grid",
            "fifo",
            {
                "search_space": {
                    "x1": {"type": "grid", "values": [-3.0, 3.0, 9.0]},
                    "x2": {"type": "choice", "values": [2.0, 12.0]},
                },
                "num_samples": 1,
            },
        ),
        ("hyperopt", "asha", {}),
        ("random", "median", {}),
        ("bohb", "hyperband", {}),
    ],
)
def test_every_algorithm_and_scheduler_family_runs(
    live_service: LiveService, algorithm: str, scheduler: str, extra: dict[str, Any]
) -> None:
    scheduler_spec = (
        {"name": scheduler, "max_t": 9, "grace_period": 1, "reduction_factor": 3}
        if scheduler != "fifo"
        else {"name": "fifo"}
    )
    settings: dict[str, Any] = {
        "name": f"{algorithm}-{scheduler}",
        "algorithm": {"name": algorithm, "seed": 3},
        "scheduler": scheduler_spec,
        "config": {"epochs": 9},
        "num_samples": 8,
    }
    spec = branin_spec(**{**settings, **extra})
    with live_service.client() as client:
        study = run_to_end(client, spec)
        assert study.status == "COMPLETED", study.error
        trials = client.trials(study.id, limit=100).items
        assert len(trials) == study.budget
        assert all(t.state in {"TERMINATED", "PRUNED"} for t in trials)
        if algorithm == "grid":
            points = sorted((t.config["x1"], t.config["x2"]) for t in trials)
            assert points == sorted((a, b) for a in (-3.0, 3.0, 9.0) for b in (2.0, 12.0))
        for trial in trials:
            results = client.results(study.id, trial.trial_id).items
            iterations = [r.iteration for r in results]
            assert iterations == list(range(1, len(iterations) + 1)), (
                "a result was lost or repeated"
            )
            if trial.state == "TERMINATED":
                assert iterations[-1] == 9
            else:  # pruned: stopped early by the scheduler
                assert iterations[-1] < 9
        if scheduler in {"asha", "hyperband"}:
            assert any(t.state == "PRUNED" for t in trials), "the scheduler cut no trial"


def test_stop_then_delete(live_service: LiveService) -> None:
    spec = {
        "name": "long-study",
        "trainable": "noop",
        "metric": "loss",
        "mode": "min",
        "search_space": {"x": {"type": "uniform", "low": 0, "high": 1}},
        "num_samples": 50,
        "max_concurrent_trials": 1,
        "config": {"iterations": 100, "sleep_s": 0.1},
    }
    with live_service.client() as client:
        study = client.submit(spec)
        wait_for_status(client, study.id, {"RUNNING"}, 120)
        # Let a result or two arrive, then stop.
        for _ in range(100):
            if client.study(study.id).num_results > 0:
                break
            time.sleep(0.2)
        answer = httpx.delete(f"{live_service.url}/api/v1/studies/{study.id}")
        assert answer.status_code == 409  # running studies are not deleted
        stopped = client.stop(study.id)
        assert stopped.status == "STOPPED"
        again = httpx.post(f"{live_service.url}/api/v1/studies/{study.id}/stop")
        assert again.status_code == 409
        assert "STOPPED" in again.json()["detail"]
        kept = client.study(study.id)
        assert kept.num_results > 0  # what the trials reported is kept
        # No trial of a stopped study is left running.
        assert kept.trial_counts.get("RUNNING", 0) == kept.trial_counts.get("PENDING", 0) == 0
        assert kept.trial_counts.get("PRUNED", 0) >= 1
        assert httpx.delete(f"{live_service.url}/api/v1/studies/{study.id}").status_code == 204
        assert httpx.get(f"{live_service.url}/api/v1/studies/{study.id}").status_code == 404
