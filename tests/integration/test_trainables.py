"""The built-in trainables run through a real Ray Tune ``Tuner`` on the session's Ray cluster."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from trainables import TrialResources, get_trainable, trial_resources
from trainables.branin import BRANIN
from trainables.hartmann6 import HARTMANN6
from trainables.synthetic import SyntheticFunction, loss_at

# Ray is imported inside the tests, never at collection: `import ray` fixes the auth mode
# from the environment, which the session fixture sets only when the cluster starts.
pytestmark = pytest.mark.ray

CHANCE_ACCURACY = 0.1  # ten digit classes


def trial_function(
    name: str, resources: TrialResources, fixed: Mapping[str, Any] | None = None
) -> Callable[[dict[str, Any]], None]:
    """What the runner hands Tune: look the trainable up by name inside the trial."""
    fixed = dict(fixed or {})

    def run_trial(config: dict[str, Any]) -> None:
        from trainables import get_trainable

        spec = get_trainable(name)
        spec.fn({**spec.default_config, **fixed, **config}, resources)

    return run_trial


def tuner_for(
    name: str,
    tmp_path: Path,
    *,
    param_space: dict[str, Any] | None = None,
    resources: TrialResources | None = None,
    fixed: Mapping[str, Any] | None = None,
    **tune_config: Any,
) -> Any:
    from ray import tune

    spec = get_trainable(name)
    resources = resources or TrialResources()
    return tune.Tuner(
        tune.with_resources(
            trial_function(name, resources, fixed), trial_resources(spec, resources)
        ),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=spec.default_metric, mode=spec.default_mode, **tune_config
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=f"test-{name}", verbose=0),
    )


def uniform_space(function: SyntheticFunction) -> dict[str, Any]:
    from ray import tune

    return {b.key: tune.uniform(b.low, b.high) for b in function.bounds}


def history(result: Any) -> pd.DataFrame:
    frame = result.metrics_dataframe
    assert frame is not None
    return frame.sort_values("training_iteration").reset_index(drop=True)


def assert_consecutive(frame: pd.DataFrame) -> None:
    iterations = list(frame["training_iteration"])
    assert iterations == list(range(1, len(iterations) + 1))
    assert list(frame["epoch"]) == iterations


@pytest.mark.parametrize("function", [BRANIN, HARTMANN6], ids=lambda f: f.name)
def test_synthetic_function_reports_loss_each_iteration(
    ray_driver: Any, tmp_path: Path, function: SyntheticFunction
) -> None:
    epochs = 4
    results = tuner_for(
        function.name,
        tmp_path,
        param_space={**uniform_space(function), "epochs": epochs},
        num_samples=3,
        max_concurrent_trials=2,
        reuse_actors=True,
    ).fit()
    assert not results.errors
    assert len(results) == 3
    for result in results:
        frame = history(result)
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

    # HyperBandForBOHB fills its most aggressive bracket first (9 trials from iteration 1),
    # so every trial here is paused at iterations 1 and 3 and resumed from its checkpoint.
    results = tuner_for(
        "branin",
        tmp_path,
        param_space=uniform_space(BRANIN),
        fixed={"epochs": 9},
        num_samples=3,
        max_concurrent_trials=2,
        reuse_actors=True,
        search_alg=TuneBOHB(seed=0),
        scheduler=HyperBandForBOHB(time_attr="training_iteration", max_t=9, reduction_factor=3),
    ).fit()
    assert not results.errors
    resumed = 0
    for result in results:
        frame = history(result)
        assert_consecutive(frame)
        resumed += len(frame[(frame["iterations_since_restore"] == 1) & (frame["epoch"] > 1)])
        x = [result.config[b.key] for b in BRANIN.bounds]
        expected = [loss_at(BRANIN, x, t, 9) for t in frame["epoch"]]
        assert list(frame["loss"]) == pytest.approx(expected, rel=1e-12)
    assert resumed >= 2, "HyperBand paused and resumed no trial"


def test_noop_reports_each_iteration(ray_driver: Any, tmp_path: Path) -> None:
    from ray import tune

    results = tuner_for(
        "noop",
        tmp_path,
        param_space={
            "x": tune.grid_search([0.5, -1.0]),
            "checkpoint": tune.grid_search([False, True]),
            "iterations": 3,
            "sleep_s": 0.01,
        },
        reuse_actors=True,
    ).fit()
    assert not results.errors
    assert len(results) == 4
    for result in results:
        frame = history(result)
        assert_consecutive(frame)
        assert frame["loss"].iloc[-1] == pytest.approx(result.config["x"] ** 2)
        assert (result.checkpoint is not None) == result.config["checkpoint"]


def test_mlp_digits_ddp_trial_learns(ray_driver: Any, tmp_path: Path) -> None:
    epochs = 3
    results = tuner_for(
        "mlp_digits",
        tmp_path,
        param_space={"lr": 0.01, "hidden": 64, "epochs": epochs},
        resources=TrialResources(num_workers=2, cpus_per_worker=1),
        num_samples=1,
        max_concurrent_trials=1,
    ).fit()
    assert not results.errors
    frame = history(results[0])
    assert_consecutive(frame)
    assert len(frame) == epochs
    for column in ("val_loss", "val_accuracy", "train_loss"):
        assert frame[column].notna().all()
    assert frame["val_accuracy"].iloc[-1] > 5 * CHANCE_ACCURACY
    assert frame["val_loss"].iloc[-1] < frame["val_loss"].iloc[0]
    assert results[0].checkpoint is not None


def test_mlp_digits_bohb_pauses_and_resumes_train_runs(ray_driver: Any, tmp_path: Path) -> None:
    """Two concurrent 2-worker trials fill the 4-CPU cluster; HyperBand pauses them (their
    workers must let go of the CPUs) and resumes them from their last epoch."""
    from ray import tune
    from ray.tune.schedulers import HyperBandForBOHB
    from ray.tune.search.bohb import TuneBOHB

    max_t = 9
    results = tuner_for(
        "mlp_digits",
        tmp_path,
        param_space={"lr": tune.loguniform(3e-3, 3e-2)},
        fixed={"epochs": max_t},
        resources=TrialResources(num_workers=2, cpus_per_worker=1),
        num_samples=2,
        max_concurrent_trials=2,
        search_alg=TuneBOHB(seed=0),
        scheduler=HyperBandForBOHB(time_attr="training_iteration", max_t=max_t, reduction_factor=3),
    ).fit()
    assert not results.errors
    resumed = 0
    for result in results:
        frame = history(result)
        print(
            frame[
                [
                    "training_iteration",
                    "iterations_since_restore",
                    "time_this_iter_s",
                    "val_accuracy",
                ]
            ].to_string()
        )
        assert_consecutive(frame)
        assert frame["val_accuracy"].notna().all()
        resumed += len(frame[(frame["iterations_since_restore"] == 1) & (frame["epoch"] > 1)])
    assert resumed >= 1, "HyperBand paused and resumed no trial"
    assert max(len(history(result)) for result in results) == max_t
