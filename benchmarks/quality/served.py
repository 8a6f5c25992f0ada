"""The service path: submit the study over REST, stop it at the budget, read the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.quality.problems import SERVICE_BOHB, Problem, service_spec

TERMINAL = ("COMPLETED", "FAILED", "STOPPED")


def run_service(
    client: Any,
    database_url: str,
    problem: Problem,
    method: str,
    seed: int,
    *,
    poll_s: float = 0.5,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """One study through a live service; results in the order the runner got them."""
    started = time.perf_counter()
    study = client.submit(service_spec(problem, method, seed))
    stop_requested = False
    deadline = time.monotonic() + timeout_s
    while study.status not in TERMINAL:
        if time.monotonic() > deadline:
            client.stop(study.id)
            raise TimeoutError(f"study {study.id} did not finish in {timeout_s:.0f} s")
        time.sleep(poll_s)
        study = client.study(study.id)
        # BOHB gets more samples than the budget needs: stop it once the store holds the
        # budget's results (the runner writes them in the order it got them).
        if (
            method == SERVICE_BOHB
            and not stop_requested
            and study.status not in TERMINAL
            and study.num_results >= problem.budget
        ):
            try:
                study = client.stop(study.id)
            except Exception:  # it may have finished meanwhile (409)
                study = client.study(study.id)
            stop_requested = True
    wall = time.perf_counter() - started
    record = read_results(database_url, study.id, problem.metric)
    return {
        **record,
        "wall_s": wall,
        "study_id": study.id,
        "status": study.status,
        "study_error": study.error,
        "stopped_at_budget": stop_requested,
        "trials": study.num_trials,
        "trial_errors": int(study.trial_counts.get("ERROR", 0)),
    }


def read_results(database_url: str, study_id: int, metric: str) -> dict[str, Any]:
    """Every stored result of the study, ordered by when the runner received it."""
    from service.store import open_store

    store = open_store(database_url)
    try:
        rows = []
        trials = store.list_trials(study_id, limit=100_000).items
        for trial in trials:
            for result in store.get_results(study_id, trial.trial_id):
                rows.append((result.reported_at, trial.number, result.iteration, result))
    finally:
        store.close()
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    first = rows[0][0] if rows else None
    values: list[float | None] = []
    epochs: list[int | None] = []
    trial_ids: list[str] = []
    times: list[float] = []
    for reported_at, _number, iteration, result in rows:
        value = result.metrics.get(metric)
        values.append(float(value) if value is not None else None)
        epoch = result.metrics.get("epoch", iteration)
        epochs.append(int(epoch) if epoch is not None else None)
        trial_ids.append(result.trial_id)
        times.append(round((reported_at - first).total_seconds(), 3) if first else 0.0)
    return {"values": values, "epochs": epochs, "trial_ids": trial_ids, "times_s": times}


def database_url_of(home: Path) -> str:
    return f"sqlite:///{home / 'hpo.db'}"
