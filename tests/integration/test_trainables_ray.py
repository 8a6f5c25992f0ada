"""The built-in trainables run through a real Ray Tune ``Tuner`` on the session's Ray cluster."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from trainables import TrialResources, get_trainable, trial_resources, trial_trainable
from trainables.branin import BRANIN
from trainables.hartmann6 import HARTMANN6
from trainables.synthetic import SyntheticFunction, loss_at

# Ray is imported inside the tests, not at collection time.
pytestmark = pytest.mark.ray


def trial_function(
    name: str, resources: TrialResources, fixed: Mapping[str, Any] | None = None
) -> Callable[[dict[str, Any]], None]:
    """What the runner hands Tune: the trainable, looked up by name inside the trial."""
    fixed = dict(fixed or {})

    def run_trial(config: dict[str, Any]) -> None:
        from trainables import get_trainable

        spec = get_trainable(name)
        spec.fn({**spec.default_config, **fixed, **config}, resources)

    return run_trial


@dataclass
class Study:
    results: Any  # ray.tune.ResultGrid
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)  # by trial id

    def history(self, result: Any) -> pd.DataFrame:
        return self.histories[result.metrics["trial_id"]]


def run_study(
    name: str,
    tmp_path: Path,
    *,
    param_space: dict[str, Any] | None = None,
    resources: TrialResources | None = None,
    fixed: Mapping[str, Any] | None = None,
    **tune_config: Any,
) -> Study:
    """Fit a Tuner as the runner would, collecting every result the way its callback does.

    (Results come from ``on_trial_result``, not from the trial's result.json: Tune
    re-downloads that file when it resumes a paused trial, and a copy synced before the
    first result loses that result.)
    """
    from ray import tune

    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    class Collect(tune.Callback):
        def on_trial_result(
            self, iteration: int, trials: Any, trial: Any, result: dict, **info: Any
        ) -> None:
            rows[trial.trial_id].append(dict(result))

    spec = get_trainable(name)
    resources = resources or TrialResources()
    tuner = tune.Tuner(
        tune.with_resources(
            trial_trainable(trial_function(name, resources, fixed)),
            trial_resources(spec, resources),
        ),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=spec.default_metric, mode=spec.default_mode, **tune_config
        ),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), name=f"test-{name}", verbose=0, callbacks=[Collect()]
        ),
    )
    results = tuner.fit()
    assert not results.errors, results.errors
    return Study(results, {trial_id: pd.DataFrame(r) for trial_id, r in rows.items()})


def uniform_space(function: SyntheticFunction) -> dict[str, Any]:
    from ray import tune

    return {b.key: tune.uniform(b.low, b.high) for b in function.bounds}


def assert_consecutive(frame: pd.DataFrame) -> None:
    """Iterations 1, 2, ... with no gap or restart, and the epoch always equal to it."""
    iterations = list(frame["training_iteration"])
    assert iterations == list(range(1, len(iterations) + 1))
    assert list(frame["epoch"]) == iterations


def resumptions(frame: pd.DataFrame) -> int:
    """Results that are the first after Tune restored the trial from a checkpoint."""
    return int(((frame["iterations_since_restore"] == 1) & (frame["epoch"] > 1)).sum())


@pytest.mark.parametrize("function", [BRANIN, HARTMANN6], ids=lambda f: f.name)
def test_synthetic_function_reports_loss_each_iteration(
    ray_driver: Any, tmp_path: Path, function: SyntheticFunction
) -> None:
    epochs = 4
    study = run_study(
        function.name,
        tmp_path,
        param_space={**uniform_space(function), "epochs": epochs},
        num_samples=3,
        max_concurrent_trials=2,
        reuse_actors=True,
    )
    assert len(study.results) == 3
    for result in study.results:
        frame = study.history(result)
        assert_consecutive(frame)
        assert len(frame) == epochs
        x = [result.config[b.key] for b in function.bounds]
        losses = list(frame["loss"])
        assert losses[-1] == pytest.approx(function.objective(x), rel=1e-12, abs=1e-12)
        assert all(loss >= function.optimum for loss in losses)
        assert losses == sorted(losses, reverse=True)
        assert result.checkpoint is not None


def test_synthetic_function_resumes_after_hyperband_pause(ray_driver: Any, tmp_path: Path) -> None:
    from ray.tune.schedulers import HyperBandForBOHB
    from ray.tune.search.bohb import TuneBOHB

    # HyperBandForBOHB fills its most aggressive bracket first (trials start at 1
    # iteration): every trial is paused at iteration 1 and resumed from its checkpoint.
    study = run_study(
        "branin",
        tmp_path,
        param_space=uniform_space(BRANIN),
        fixed={"epochs": 9},
        num_samples=3,
        max_concurrent_trials=2,
        reuse_actors=True,
        search_alg=TuneBOHB(seed=0),
        scheduler=HyperBandForBOHB(time_attr="training_iteration", max_t=9, reduction_factor=3),
    )
    resumed = 0
    for result in study.results:
        frame = study.history(result)
        assert_consecutive(frame)
        resumed += resumptions(frame)
        x = [result.config[b.key] for b in BRANIN.bounds]
        expected = [loss_at(BRANIN, x, t, 9) for t in frame["epoch"]]
        assert list(frame["loss"]) == pytest.approx(expected, rel=1e-12)
    assert resumed >= 3, "HyperBand paused and resumed too few trials"
    assert max(len(frame) for frame in study.histories.values()) == 9


def test_noop_reports_each_iteration(ray_driver: Any, tmp_path: Path) -> None:
    from ray import tune

    study = run_study(
        "noop",
        tmp_path,
        param_space={
            "x": tune.grid_search([0.5, -1.0]),
            "checkpoint": tune.grid_search([False, True]),
            "iterations": 3,
            "sleep_s": 0.01,
        },
        reuse_actors=True,
    )
    assert len(study.results) == 4
    for result in study.results:
        frame = study.history(result)
        assert_consecutive(frame)
        assert frame["loss"].iloc[-1] == pytest.approx(result.config["x"] ** 2)
        assert (result.checkpoint is not None) == result.config["checkpoint"]
