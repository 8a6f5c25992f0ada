"""Continuing studies on the session's real Ray cluster: a finished HyperOpt study
extended from 20 to 30 trials, a running one extended in flight, a study warm-started
from another, and the best trial exported as a config."""

from __future__ import annotations

from typing import Any

import pytest

from service.client import HpoClient
from tests.fixtures.service import LiveService, wait_for_status
from tests.fixtures.watch import noop_spec

pytestmark = pytest.mark.ray

TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}


def branin(name: str, trials: int, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "trainable": "branin",
        "search_space": {
            "x1": {"type": "uniform", "low": -5, "high": 10},
            "x2": {"type": "uniform", "low": 0, "high": 15},
        },
        "algorithm": {"name": "hyperopt", "seed": 11, "n_initial_points": 5},
        "num_samples": trials,
        "max_concurrent_trials": 2,
        "config": {"epochs": 1},
    }
    spec.update(extra)
    return spec


def configs(client: HpoClient, study_id: int) -> list[tuple[float, float]]:
    trials = client.trials(study_id, limit=1000).items
    return [(t.config["x1"], t.config["x2"]) for t in sorted(trials, key=lambda t: t.number)]


def best_so_far(values: list[float]) -> list[float]:
    out: list[float] = []
    for value in values:
        out.append(value if not out else min(out[-1], value))
    return out


def test_a_finished_study_goes_on_for_ten_more_trials(live_service: LiveService) -> None:
    with live_service.client() as client:
        study = client.submit(branin("extend-finished", 20))
        done = wait_for_status(client, study.id, TERMINAL, 300)
        assert done.status == "COMPLETED", done.error
        before = client.trials(study.id, limit=1000).items
        assert len(before) == 20
        old = configs(client, study.id)
        best_before = done.best_trial
        assert best_before is not None and best_before.best_value is not None

        extended = client.extend(study.id, num_samples=30)
        assert extended.budget == 30 and extended.extensions == 1
        assert extended.status in {"PENDING", "RUNNING"}
        final = wait_for_status(client, study.id, TERMINAL, 300)
        assert final.status == "COMPLETED", final.error
        assert final.ray_job_id == f"hpo-study-{study.id}-x1"  # a new Ray job
        after = sorted(client.trials(study.id, limit=1000).items, key=lambda t: t.number)

    assert len(after) == 30 and final.num_trials == 30
    assert all(t.state == "TERMINATED" for t in after)
    # What was stored stays as it was; the ten new configurations are all new.
    assert [(t.trial_id, t.best_value) for t in after[:20]] == [
        (t.trial_id, t.best_value) for t in sorted(before, key=lambda t: t.number)
    ]
    new = configs_of(after[20:])
    assert len(new) == 10 and not set(new) & set(old)
    # The best so far never gets worse, and the study's best is at least as good as before.
    values = [t.best_value for t in after]
    assert all(v is not None for v in values)
    curve = best_so_far([float(v) for v in values if v is not None])
    assert curve == sorted(curve, reverse=True)
    assert final.best_trial is not None
    assert final.best_trial.best_value <= best_before.best_value  # type: ignore[operator]
    assert curve[-1] == final.best_trial.best_value


def configs_of(trials: list[Any]) -> list[tuple[float, float]]:
    return [(t.config["x1"], t.config["x2"]) for t in trials]


def test_a_running_study_extended_in_flight_goes_on_in_its_job(live_service: LiveService) -> None:
    spec = noop_spec(
        "extend-running",
        trials=4,
        iterations=4,
        sleep_s=0.5,
        algorithm={"name": "hyperopt", "seed": 2},
    )
    with live_service.client() as client:
        study = client.submit(spec)
        wait_for_status(client, study.id, {"RUNNING"}, 120)
        extended = client.extend(study.id, num_samples=7)
        assert extended.status == "RUNNING" and extended.budget == 7
        final = wait_for_status(client, study.id, TERMINAL, 300)
        trials = client.trials(study.id, limit=100).items
    assert final.status == "COMPLETED", final.error
    assert final.ray_job_id == f"hpo-study-{study.id}"  # the same job went on
    assert len(trials) == 7 and all(t.state == "TERMINATED" for t in trials)
    assert len({(t.config["x1"], t.config["x2"]) for t in trials}) == 7


def test_warm_start_from_another_study_and_export_the_best(live_service: LiveService) -> None:
    with live_service.client() as client:
        source = client.submit(branin("warm-source", 8))
        assert wait_for_status(client, source.id, TERMINAL, 300).status == "COMPLETED"
        best = client.best(source.id)
        trials = {t.trial_id: t for t in client.trials(source.id, limit=100).items}
        assert best.trial_id in trials
        assert best.value == min(t.best_value for t in trials.values() if t.best_value is not None)
        assert best.config == {"epochs": 1, **trials[best.trial_id].config}
        assert best.metrics["loss"] == best.value and best.trainable == "branin"

        warm = client.submit(branin("warm", 4, warm_start_from=source.id))
        done = wait_for_status(client, warm.id, TERMINAL, 300)
        assert done.status == "COMPLETED", done.error
        assert len(configs(client, warm.id)) == 4
        assert not set(configs(client, warm.id)) & set(configs(client, source.id))
        # The best config posts straight back as a study's fixed config.
        check = client.submit(
            {
                "name": "from-best",
                "trainable": best.trainable,
                "config": {key: v for key, v in best.config.items() if key != "x2"},
                "search_space": {"x2": {"type": "choice", "values": [best.config["x2"]]}},
                "num_samples": 1,
            }
        )
        rerun = wait_for_status(client, check.id, TERMINAL, 300)
    assert rerun.status == "COMPLETED" and rerun.best_trial is not None
    assert rerun.best_trial.best_value == pytest.approx(best.value)
