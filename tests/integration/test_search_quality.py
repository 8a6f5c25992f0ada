"""Search quality through the service: HyperOpt is no worse than random search on Branin.

One trial at a time in each study: HyperOpt's suggestions then depend only on its seed
and on the results before them, so each seed's outcome is the same on every run. With
two at a time, the order in which results came back changed TPE's history, and the
medians of 5 seeds crossed from run to run (after 25 trials HyperOpt and random search
are about level on Branin: benchmarks/README.md, search quality)."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from tests.fixtures.service import LiveService, wait_for_status

pytestmark = pytest.mark.ray

BRANIN_OPTIMUM = 0.397887
SEEDS = (0, 1, 2, 3, 4)
TRIALS = 40  # as the issue asks: TPE has 35 trials after its random start


def branin_study(algorithm: str, seed: int) -> dict[str, Any]:
    return {
        "name": f"quality-{algorithm}-{seed}",
        "trainable": "branin",
        "metric": "loss",
        "mode": "min",
        "search_space": {
            "x1": {"type": "uniform", "low": -5, "high": 10},
            "x2": {"type": "uniform", "low": 0, "high": 15},
        },
        # HyperOpt: 5 random trials, then TPE (Ray's default of 20 would leave TPE
        # only 5 of the 25 trials).
        "algorithm": {"name": algorithm, "seed": seed}
        | ({"n_initial_points": 5} if algorithm == "hyperopt" else {}),
        "num_samples": TRIALS,
        "max_concurrent_trials": 1,
        "config": {"epochs": 1},
    }


def test_hyperopt_median_best_is_no_worse_than_random(live_service: LiveService) -> None:
    with live_service.client() as client:
        submitted = {
            (algorithm, seed): client.submit(branin_study(algorithm, seed)).id
            for algorithm in ("hyperopt", "random")
            for seed in SEEDS
        }
        best: dict[str, list[float]] = {"hyperopt": [], "random": []}
        for (algorithm, _seed), study_id in submitted.items():
            study: Any = wait_for_status(client, study_id, {"COMPLETED", "FAILED"}, 900)
            assert study.status == "COMPLETED", study.error
            assert study.num_trials == TRIALS
            value = study.best_trial.best_value
            # Never below the known optimum: that would mean a wrong objective.
            assert value >= BRANIN_OPTIMUM - 1e-9
            best[algorithm].append(value)
    hyperopt, random = statistics.median(best["hyperopt"]), statistics.median(best["random"])
    print(f"median best of {TRIALS} trials: hyperopt {hyperopt:.4f}, random {random:.4f}; {best}")
    assert hyperopt <= random
