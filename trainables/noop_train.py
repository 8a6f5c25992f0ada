"""``noop_train``: ``noop`` run by Ray Train workers, to measure what a Train trial costs.

Each of the trial's ``resources.num_workers`` workers sleeps ``sleep_s`` and reports
``loss`` each of ``iterations`` iterations; nothing is trained and nothing checkpointed,
so a trial's wall time beyond ``iterations * sleep_s`` is the worker group's start and
the result round trip through Ray Train and Tune.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from trainables.checks import int_at_least, number_in
from trainables.noop import noop_loss
from trainables.registry import Problem, TrainableSpec, TrialResources, register


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import ray.train

    iterations = int(loop_config["iterations"])
    sleep_s = float(loop_config["sleep_s"])
    for t in range(1, iterations + 1):
        if sleep_s > 0:
            time.sleep(sleep_s)
        ray.train.report({"loss": noop_loss(loop_config, t, iterations), "epoch": t})


def run(config: dict[str, Any], resources: TrialResources) -> None:
    from trainables.train_in_tune import fit_in_tune

    fit_in_tune(train_loop_per_worker, dict(config), resources)


def validate(config: Mapping[str, Any], resources: TrialResources) -> list[Problem]:
    problems: list[Problem] = []
    if resources.num_workers < 1:
        problems.append(
            (("resources", "num_workers"), f"must be >= 1, got {resources.num_workers}")
        )
    if resources.tensor_parallel != 1:
        problems.append((("resources", "tensor_parallel"), "noop_train has no model; must be 1"))
    problems += int_at_least(config, "iterations", 1)
    problems += number_in(config, "sleep_s", 0.0, float("inf"))
    return problems


SPEC = register(
    TrainableSpec(
        name="noop_train",
        description=(
            "`noop` on Ray Train workers: each of resources.num_workers workers sleeps "
            "`sleep_s` and reports `loss` each of `iterations` iterations (no model, no "
            "checkpoints). Measures a Train trial's worker-group start and result path."
        ),
        metrics=("loss", "epoch"),
        default_metric="loss",
        default_mode="min",
        default_search_space={"x": {"type": "uniform", "low": -1.0, "high": 1.0}},
        default_config={"iterations": 1, "sleep_s": 1.0},
        fidelity_key="iterations",
        uses_train_workers=True,
        fn=run,
        validate=validate,
    )
)
