"""The peer: the same searchers called directly in Ray Tune, as a user writes it by hand.

TuneBOHB + HyperBandForBOHB, HyperOptSearch + FIFO, and random search
(``BasicVariantGenerator``) over the registered trainable's own function, with the same
seed, search space, ``n_initial_points`` and ``max_concurrent_trials`` as the study the
service gets. Nothing here comes from the service (``tuner_builder`` is what is compared).
A ``tune.Callback`` records every result in the order it reaches the driver.
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks.quality.problems import (
    DIRECT_BOHB,
    DIRECT_HYPEROPT,
    RANDOM,
    REDUCTION_FACTOR,
    Problem,
    configspace,
    fixed_config,
    flatten_config,
    hyperopt_space,
    tune_space,
)


def run_direct(problem: Problem, method: str, seed: int, storage: str) -> dict[str, Any]:
    """One run; ``ray.init`` must have been called. Returns the results in arrival order."""
    import logging

    from ray import tune
    from ray.tune.schedulers import FIFOScheduler, HyperBandForBOHB
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from trainables import TrialResources, get_trainable, trial_resources, trial_trainable

    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    spec = get_trainable(problem.name)
    resources = TrialResources(num_workers=problem.num_workers)
    fixed = {**spec.default_config, **fixed_config(problem)}
    fn = spec.fn

    def trial(config: dict[str, Any]) -> None:
        fn({**fixed, **flatten_config(config)}, resources)

    trial.__name__ = f"direct_{problem.name}"
    # A trial that runs Ray Train must end its Train run before Tune pauses or reuses its
    # actor: the trainable's own Tune wrapper does that (trainables.trial_trainable).
    body: Any = trial_trainable(trial) if spec.uses_train_workers else trial
    trainable = tune.with_resources(body, trial_resources(spec, resources))

    param_space: dict[str, Any] | None = None
    stopper: Any = None
    search_alg: Any
    scheduler: Any
    if method == DIRECT_BOHB:
        from ray.tune.search.bohb import TuneBOHB

        search_alg = TuneBOHB(
            space=configspace(problem, seed), metric=problem.metric, mode="min", seed=seed
        )
        scheduler = HyperBandForBOHB(
            time_attr="training_iteration",
            metric=problem.metric,
            mode="min",
            max_t=problem.max_t,
            reduction_factor=REDUCTION_FACTOR,
        )
        num_samples = problem.bohb_samples
        stopper = BudgetStopper(problem.budget)  # more samples than needed: stop at the budget
    elif method == DIRECT_HYPEROPT:
        from ray.tune.search.hyperopt import HyperOptSearch

        search_alg = HyperOptSearch(
            space=hyperopt_space(problem),
            metric=problem.metric,
            mode="min",
            random_state_seed=seed,
            n_initial_points=problem.n_initial_points,
        )
        scheduler = FIFOScheduler()  # type: ignore[no-untyped-call]
        num_samples = problem.full_trials
    elif method == RANDOM:
        # Tune ignores TuneConfig.max_concurrent_trials for a variant generator (it warns):
        # the generator takes the limit itself.
        search_alg = BasicVariantGenerator(random_state=seed, max_concurrent=problem.concurrency)
        scheduler = FIFOScheduler()  # type: ignore[no-untyped-call]
        param_space = tune_space(problem)
        num_samples = problem.full_trials
    else:
        raise ValueError(f"not a direct method: {method}")

    recorder = Recorder(problem.metric)
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=problem.concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"{problem.name}-{method}-{seed}",
            storage_path=storage,
            stop=stopper,
            callbacks=[recorder],
            verbose=0,
        ),
    )
    started = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - started
    errors = len(grid.errors)
    return {
        **recorder.record(),
        "wall_s": wall,
        "trials": len(grid),
        "trial_errors": errors,
    }


class BudgetStopper:
    """Ends the experiment once ``budget`` results (epochs) have been reported."""

    def __new__(cls, budget: int) -> Any:
        from ray import tune

        class _Stopper(tune.Stopper):
            def __init__(self) -> None:
                self.seen = 0

            def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
                self.seen += 1
                return False

            def stop_all(self) -> bool:
                return self.seen >= budget

        return _Stopper()


class Recorder:
    """A ``tune.Callback`` keeping every result's metric, epoch and trial, in arrival order."""

    def __new__(cls, metric: str) -> Any:
        from ray import tune

        class _Recorder(tune.Callback):
            def __init__(self) -> None:
                self.values: list[float | None] = []
                self.epochs: list[int | None] = []
                self.trials: list[str] = []
                self.times: list[float] = []
                self.started = time.time()

            def on_trial_result(
                self, iteration: int, trials: Any, trial: Any, result: dict[str, Any], **info: Any
            ) -> None:
                value = result.get(metric)
                self.values.append(float(value) if value is not None else None)
                epoch = result.get("epoch", result.get("training_iteration"))
                self.epochs.append(int(epoch) if epoch is not None else None)
                self.trials.append(str(trial.trial_id))
                self.times.append(round(time.time() - self.started, 3))

            def record(self) -> dict[str, Any]:
                return {
                    "values": self.values,
                    "epochs": self.epochs,
                    "trial_ids": self.trials,
                    "times_s": self.times,
                }

        return _Recorder()
