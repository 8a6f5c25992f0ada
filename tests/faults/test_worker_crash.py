"""Fault 3a: a DDP worker of a running 2-worker Ray Train trial is killed (SIGKILL).

The trial is retried from its last checkpoint (``stop.max_failures``) and finishes with
every epoch stored once; a trial whose worker dies when it has no retry left
(``max_failures`` used up, here 0) ends ``ERROR`` with reason ``worker_lost``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.client import HpoClient
from tests.faults.ledger import kill9, pids_matching, wait_for
from tests.fixtures.service import LiveService, wait_for_status

pytestmark = pytest.mark.ray

TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}


def ddp_spec(name: str, *, epochs: int, max_failures: int) -> dict:
    return {
        "name": name,
        "trainable": "mlp_digits",
        "search_space": {"lr": {"type": "choice", "values": [0.01]}},
        "algorithm": {"name": "random", "seed": 0},
        "num_samples": 1,
        "resources": {"num_workers": 2, "cpus_per_worker": 1},
        "config": {"epochs": epochs, "hidden": 32, "layers": 1, "optimizer": "adam"},
        "stop": {"max_failures": max_failures},
    }


def train_worker_pids(dashboard_url: str) -> list[int]:
    """Ray Train's worker actors (their processes are titled ``ray::RayTrainWorker...``) on
    the test cluster: its raylet, and so every worker process, has the environment that
    LocalRayHead gave ``ray start``, naming this cluster's dashboard."""
    return pids_matching(
        lambda argv: any("RayTrainWorker" in arg for arg in argv[:1]),
        env={"RAY_API_SERVER_ADDRESS": dashboard_url},
    )


def kill_a_worker_after(client: HpoClient, study_id: int, results: int, dashboard_url: str) -> int:
    """Wait until the trial has ``results`` results and both workers run; kill one."""
    wait_for(
        f"{results} results",
        lambda: client.study(study_id).num_results >= results,
        timeout_s=240,
        poll_s=0.2,
    )
    workers = wait_for(
        "two Train workers", lambda: len(pids := train_worker_pids(dashboard_url)) >= 2 and pids
    )
    victim = workers[-1]  # type: ignore[index]
    kill9(victim)
    return victim


def only_trial(client: HpoClient, study_id: int):  # type: ignore[no-untyped-def]
    (trial,) = client.trials(study_id).items
    return trial


def test_killed_ddp_worker_resumes_from_checkpoint(live_service: LiveService) -> None:
    epochs = 10
    with live_service.client() as client:
        study = client.submit(ddp_spec("ddp-worker-crash", epochs=epochs, max_failures=2))
        victim = kill_a_worker_after(
            client, study.id, results=3, dashboard_url=live_service.ray.dashboard_url
        )
        at_kill = client.study(study.id).num_results
        done = wait_for_status(client, study.id, TERMINAL, timeout_s=300)
        trial = only_trial(client, study.id)
        iterations = [r.iteration for r in client.results(study.id, trial.trial_id).items]
    assert done.status == "COMPLETED", done.error
    assert trial.state == "TERMINATED"
    assert iterations == list(range(1, epochs + 1))  # every epoch once, none lost
    # Tune recorded the failure and retried the trial (from its checkpoint: the epoch
    # count went on, a restart from scratch would have reported epochs 1..k twice).
    error_files = list(
        Path(live_service.home, "ray_results", f"hpo-study-{study.id}").glob("*/error.txt")
    )
    assert error_files, "the trial did not fail"
    text = error_files[0].read_text()
    assert "Failure # 1" in text and "Failure # 2" not in text
    print(f"killed Train worker {victim} at {at_kill} results; {text.splitlines()[0]}")


def test_max_failures_is_honoured(live_service: LiveService) -> None:
    """With ``max_failures: 0`` the first lost worker ends the trial: ERROR, reason
    ``worker_lost`` (the test above shows a retry; this one, that retries are counted
    against the limit and stop there)."""
    with live_service.client() as client:
        study = client.submit(ddp_spec("ddp-worker-no-retry", epochs=60, max_failures=0))
        kill_a_worker_after(
            client, study.id, results=1, dashboard_url=live_service.ray.dashboard_url
        )
        done = wait_for_status(client, study.id, TERMINAL, timeout_s=300)
        trial = only_trial(client, study.id)
    assert trial.state == "ERROR"
    assert trial.reason == "worker_lost", trial.error
    assert trial.num_results < 60
    assert done.status == "FAILED"  # its only trial failed
