"""The problems of the search-quality benchmark, as service specs and as hand-written Tune spaces.

The service gets a study spec (the search-space language, ``search_spaces``); the direct
runs get the same space written by hand the way a Ray Tune user writes it (ConfigSpace for
TuneBOHB, ``hp.*`` for HyperOptSearch, ``tune.*`` for random search), so the direct path
shares no code with the service's converters or ``tuner_builder``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from trainables.mlp_digits import SEARCH_SPACE as MLP_DIGITS_SPACE

# Methods: the two searchers through the service, the same searchers in plain Ray Tune,
# and Tune's random search (every trial to full fidelity).
SERVICE_BOHB = "service_bohb"
DIRECT_BOHB = "direct_bohb"
SERVICE_HYPEROPT = "service_hyperopt"
DIRECT_HYPEROPT = "direct_hyperopt"
RANDOM = "random"
METHODS = (SERVICE_BOHB, DIRECT_BOHB, SERVICE_HYPEROPT, DIRECT_HYPEROPT, RANDOM)
PAIRS = ((SERVICE_BOHB, DIRECT_BOHB), (SERVICE_HYPEROPT, DIRECT_HYPEROPT))

REDUCTION_FACTOR = 3


@dataclass(frozen=True)
class Problem:
    name: str  # also the trainable's name
    metric: str
    max_t: int  # epochs of a full-fidelity trial (HyperBand's max_t)
    full_trials: int  # trials of random search / HyperOpt; budget = full_trials * max_t
    bohb_samples: int  # BOHB's num_samples: more than the budget needs; cut at the budget
    concurrency: int  # max_concurrent_trials of every run
    n_initial_points: int  # HyperOpt's random start
    optimum: float | None  # known minimum; None: the best value any run reached
    space: Mapping[str, Any]  # the study's search space (service language)
    config: Mapping[str, Any] = field(default_factory=dict)  # fixed trial config
    num_workers: int = 1  # Ray Train workers per trial (mlp_digits)

    @property
    def budget(self) -> int:
        return self.full_trials * self.max_t


def _uniform_space(bounds: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    return {k: {"type": "uniform", "low": lo, "high": hi} for k, (lo, hi) in bounds.items()}


BRANIN_BOUNDS = {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}
HARTMANN6_BOUNDS = {f"x{i}": (0.0, 1.0) for i in range(1, 7)}
# The service side searches the trainable's own preset space; direct.py writes it by hand.
MLP_SPACE: dict[str, Any] = MLP_DIGITS_SPACE

FULL: dict[str, Problem] = {
    "branin": Problem(
        name="branin",
        metric="loss",
        max_t=9,
        full_trials=20,
        bohb_samples=80,
        concurrency=2,
        n_initial_points=5,
        optimum=0.397887357729738,
        space=_uniform_space(BRANIN_BOUNDS),
        config={"iteration_time_s": 0.0},
    ),
    "hartmann6": Problem(
        name="hartmann6",
        metric="loss",
        max_t=27,
        full_trials=20,
        bohb_samples=120,
        concurrency=2,
        n_initial_points=5,
        optimum=-3.32236801141551,
        space=_uniform_space(HARTMANN6_BOUNDS),
        config={"iteration_time_s": 0.0},
    ),
    # Every trial start, and every HyperBand resume, is a new Ray Train run (several
    # processes, two importing torch; whatever the epochs): max_t 3 (one HyperBand
    # promotion, 1 -> 3 epochs) and 4 trials' budget keep a run to ~4-7 Train starts, ~26
    # per seed of the five methods (max_t 9 x 6 trials: ~35 per BOHB run, ~88 per seed).
    "mlp_digits": Problem(
        name="mlp_digits",
        metric="val_loss",
        max_t=3,
        full_trials=4,
        bohb_samples=12,
        concurrency=2,
        n_initial_points=2,
        optimum=None,
        space=MLP_SPACE,
        config={"seed": 0},
    ),
}

# A check that everything runs end to end, not a measurement.
QUICK: dict[str, Problem] = {
    "branin": replace(FULL["branin"], max_t=3, full_trials=4, bohb_samples=12, n_initial_points=2),
    "hartmann6": replace(
        FULL["hartmann6"], max_t=9, full_trials=3, bohb_samples=16, n_initial_points=2
    ),
    "mlp_digits": replace(
        FULL["mlp_digits"], max_t=3, full_trials=1, bohb_samples=4, n_initial_points=1
    ),
}


def fixed_config(problem: Problem) -> dict[str, Any]:
    """The config every trial gets besides the searched parameters."""
    return {**problem.config, "epochs": problem.max_t}


def service_spec(problem: Problem, method: str, seed: int) -> dict[str, Any]:
    """The study a user submits for ``method`` (service_bohb / service_hyperopt)."""
    algorithm: dict[str, Any]
    if method == SERVICE_BOHB:
        algorithm = {"name": "bohb", "seed": seed}
        scheduler: Any = {
            "name": "hyperband",
            "max_t": problem.max_t,
            "reduction_factor": REDUCTION_FACTOR,
        }
        num_samples = problem.bohb_samples
    elif method == SERVICE_HYPEROPT:
        algorithm = {"name": "hyperopt", "seed": seed, "n_initial_points": problem.n_initial_points}
        scheduler = "fifo"
        num_samples = problem.full_trials
    else:
        raise ValueError(f"not a service method: {method}")
    spec: dict[str, Any] = {
        "name": f"quality-{problem.name}-{method}-{seed}",
        "trainable": problem.name,
        "metric": problem.metric,
        "mode": "min",
        "search_space": dict(problem.space),
        "algorithm": algorithm,
        "scheduler": scheduler,
        "num_samples": num_samples,
        "max_concurrent_trials": problem.concurrency,
        "config": fixed_config(problem),
    }
    if problem.name == "mlp_digits":
        spec["resources"] = {"num_workers": problem.num_workers, "cpus_per_worker": 1}
    return spec


# --- the same spaces written by hand for plain Ray Tune --------------------------------


def configspace(problem: Problem, seed: int) -> Any:
    """TuneBOHB's space: a ConfigSpace, conditions for the optimizer's parameters."""
    import ConfigSpace as CS

    space = CS.ConfigurationSpace(seed=seed)
    if problem.name == "mlp_digits":
        optimizer = CS.Categorical("optimizer", ["sgd", "adam"])
        momentum = CS.Float("momentum", (0.0, 0.99))
        beta1 = CS.Float("beta1", (0.8, 0.99))
        space.add(
            [
                CS.Float("lr", (1e-4, 1e-1), log=True),
                CS.Categorical("hidden", [32, 64, 128]),
                CS.Integer("layers", (1, 3)),
                CS.Float("weight_decay", (1e-6, 1e-2), log=True),
                CS.Categorical("batch_size", [32, 64, 128]),
                CS.Float("dropout", (0.0, 0.5)),
                optimizer,
                momentum,
                beta1,
            ]
        )
        space.add(
            [
                CS.EqualsCondition(momentum, optimizer, "sgd"),
                CS.EqualsCondition(beta1, optimizer, "adam"),
            ]
        )
        return space
    space.add([CS.Float(key, bounds) for key, bounds in _bounds(problem).items()])
    return space


def hyperopt_space(problem: Problem) -> dict[str, Any]:
    """HyperOptSearch's space: ``hp.*``, a nested choice for the optimizer."""
    from hyperopt import hp

    if problem.name == "mlp_digits":
        return {
            "lr": hp.loguniform("lr", _ln(1e-4), _ln(1e-1)),
            "hidden": hp.choice("hidden", [32, 64, 128]),
            "layers": hp.uniformint("layers", 1, 3),
            "weight_decay": hp.loguniform("weight_decay", _ln(1e-6), _ln(1e-2)),
            "batch_size": hp.choice("batch_size", [32, 64, 128]),
            "dropout": hp.uniform("dropout", 0.0, 0.5),
            "optimizer": hp.choice(
                "optimizer",
                [
                    {"optimizer": "sgd", "momentum": hp.uniform("momentum", 0.0, 0.99)},
                    {"optimizer": "adam", "beta1": hp.uniform("beta1", 0.8, 0.99)},
                ],
            ),
        }
    return {key: hp.uniform(key, low, high) for key, (low, high) in _bounds(problem).items()}


def tune_space(problem: Problem) -> dict[str, Any]:
    """Random search's ``param_space`` (Tune's own domains). Tune's variant generator has
    no conditional parameters: momentum and beta1 are both drawn, the unused one is
    ignored by the trainable (it does not change what is trained)."""
    from ray import tune

    if problem.name == "mlp_digits":
        return {
            "lr": tune.loguniform(1e-4, 1e-1),
            "hidden": tune.choice([32, 64, 128]),
            "layers": tune.randint(1, 4),  # upper bound exclusive in Tune
            "weight_decay": tune.loguniform(1e-6, 1e-2),
            "batch_size": tune.choice([32, 64, 128]),
            "dropout": tune.uniform(0.0, 0.5),
            "optimizer": tune.choice(["sgd", "adam"]),
            "momentum": tune.uniform(0.0, 0.99),
            "beta1": tune.uniform(0.8, 0.99),
        }
    return {key: tune.uniform(low, high) for key, (low, high) in _bounds(problem).items()}


def flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A sampled config as the trainable takes it: HyperOpt's nested optimizer choice
    lifted to the top level; numpy scalars to Python numbers."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flatten_config(value))
        else:
            out[key] = value.item() if hasattr(value, "item") else value
    return out


def _bounds(problem: Problem) -> dict[str, tuple[float, float]]:
    return {"branin": BRANIN_BOUNDS, "hartmann6": HARTMANN6_BOUNDS}[problem.name]


def _ln(x: float) -> float:
    import math

    return math.log(x)
