"""Multi-fidelity wrapper shared by the synthetic test functions (branin, hartmann6).

The loss reported at iteration ``t`` of ``T = config["epochs"]`` is

    loss_t(x) = f(x) + c * (1 - t / T) * (1 + d(x)),   d(x) = mean_i (2 u_i - 1)^2

where ``u`` is ``x`` scaled to the unit cube and ``c`` a per-function scale. The penalty is
never negative, shrinks linearly and is exactly 0 at ``t = T``, so no iteration reports less
than the known optimum and the last one reports ``f(x)`` itself. ``d`` (0 at the centre of
the domain, 1 at its corners) makes early iterations a slightly distorted but strongly
correlated view of the final ranking, like a short training run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trainables.checks import int_at_least, is_number, number_in, single_process
from trainables.registry import Problem, TrainableSpec, TrialResources
from trainables.tune_state import load_state, report_with_state


@dataclass(frozen=True)
class Bound:
    key: str
    low: float
    high: float


@dataclass(frozen=True)
class SyntheticFunction:
    name: str
    bounds: tuple[Bound, ...]
    objective: Callable[[Sequence[float]], float]
    optimum: float  # the known global minimum of ``objective`` on the domain
    penalty_scale: float  # c in the module docstring


def fidelity_penalty(function: SyntheticFunction, x: Sequence[float], t: int, epochs: int) -> float:
    """The non-negative excess of iteration ``t`` of ``epochs`` over the true objective."""
    if t >= epochs:
        return 0.0
    unit = [(value - b.low) / (b.high - b.low) for value, b in zip(x, function.bounds, strict=True)]
    distortion = sum((2.0 * u - 1.0) ** 2 for u in unit) / len(unit)
    return function.penalty_scale * (1.0 - t / epochs) * (1.0 + distortion)


def loss_at(function: SyntheticFunction, x: Sequence[float], t: int, epochs: int) -> float:
    return function.objective(x) + fidelity_penalty(function, x, t, epochs)


def read_point(function: SyntheticFunction, config: Mapping[str, Any]) -> list[float]:
    """The point to evaluate, from ``config``; ValueError if a coordinate is absent or outside."""
    point = []
    for b in function.bounds:
        if b.key not in config:
            raise ValueError(f"{function.name}: config has no {b.key!r}")
        value = config[b.key]
        if not is_number(value) or not b.low <= value <= b.high:
            raise ValueError(f"{function.name}: {b.key}={value!r} is outside [{b.low}, {b.high}]")
        point.append(float(value))
    return point


def run(function: SyntheticFunction, config: Mapping[str, Any]) -> None:
    """The trial body: one report (and a tiny checkpoint) per iteration, resuming if paused."""
    epochs = int(config["epochs"])
    pause_s = float(config.get("iteration_time_s", 0.0))
    x = read_point(function, config)
    value = function.objective(x)
    state = load_state()
    start = int(state["iteration"]) if state else 0
    for t in range(start + 1, epochs + 1):
        if pause_s > 0:
            time.sleep(pause_s)
        loss = value + fidelity_penalty(function, x, t, epochs)
        report_with_state({"loss": loss, "epoch": t}, {"iteration": t})


def validate(
    function: SyntheticFunction, config: Mapping[str, Any], resources: TrialResources
) -> list[Problem]:
    problems = single_process(function.name, resources)
    problems += int_at_least(config, "epochs", 1)
    problems += number_in(config, "iteration_time_s", 0.0, float("inf"))
    for b in function.bounds:
        problems += number_in(config, b.key, b.low, b.high)
    return problems


def search_space(function: SyntheticFunction) -> dict[str, Any]:
    return {b.key: {"type": "uniform", "low": b.low, "high": b.high} for b in function.bounds}


def make_spec(function: SyntheticFunction, *, description: str, epochs: int) -> TrainableSpec:
    return TrainableSpec(
        name=function.name,
        description=description,
        metrics=("loss", "epoch"),
        default_metric="loss",
        default_mode="min",
        default_search_space=search_space(function),
        default_config={"epochs": epochs, "iteration_time_s": 0.0},
        fidelity_key="epochs",
        uses_train_workers=False,
        fn=lambda config, resources: run(function, config),
        validate=lambda config, resources: validate(function, config, resources),
    )
