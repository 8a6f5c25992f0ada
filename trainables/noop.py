"""A trainable that only sleeps and reports: measures the service's and Tune's overhead."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from trainables.checks import int_at_least, is_number, number_in, single_process
from trainables.failures import InvalidConfig
from trainables.registry import Problem, TrainableSpec, TrialResources, register
from trainables.tune_state import load_state, report_with_state


def noop_loss(config: Mapping[str, Any], t: int, iterations: int) -> float:
    """Sum of squares of the numeric ``x*`` parameters, plus ``1 - t/iterations``."""
    sum_sq = sum(
        float(value) ** 2
        for key, value in config.items()
        if key.startswith("x") and is_number(value)
    )
    return sum_sq + (1.0 - t / iterations)


def run(config: dict[str, Any], resources: TrialResources) -> None:
    iterations = int(config["iterations"])
    sleep_s = float(config["sleep_s"])
    checkpoint = bool(config.get("checkpoint", False))
    state = load_state() if checkpoint else None
    start = int(state["iteration"]) if state else 0
    fail_above = config.get("fail_above")
    report_log = config.get("report_log")
    for t in range(start + 1, iterations + 1):
        if sleep_s > 0:
            time.sleep(sleep_s)
        if fail_above is not None and t == 2 and float(config.get("x", 0.0)) > float(fail_above):
            # For tests of failing trials: raise after one reported result.
            raise_failure(str(config.get("fail_with", "error")), config, fail_above)
        metrics = {"loss": noop_loss(config, t, iterations), "epoch": t}
        if report_log:
            log_report(str(report_log), t)
        report_with_state(metrics, {"iteration": t} if checkpoint else None)


FAILURES = ("error", "oom", "invalid_config")


def raise_failure(kind: str, config: Mapping[str, Any], fail_above: Any) -> None:
    """The failure a test asked for: a plain error, an out-of-memory or a bad config."""
    why = f"x={config.get('x')} is above fail_above={fail_above}"
    if kind == "oom":
        raise MemoryError(f"out of memory (simulated: {why})")
    if kind == "invalid_config":
        raise InvalidConfig(f"invalid config (simulated: {why})")
    raise ValueError(why)


def log_report(path: str, iteration: int) -> None:
    """Append "trial_id iteration" before reporting: what the trial side reported, for
    tests that count results lost (an iteration reported twice after a retry shows twice)."""
    from ray import tune

    line = f"{tune.get_context().get_trial_id()} {iteration}\n"
    # One write call of a short line to a file opened for append: lines never interleave.
    with open(path, "a") as handle:
        handle.write(line)


def validate(config: Mapping[str, Any], resources: TrialResources) -> list[Problem]:
    problems = single_process("noop", resources)
    problems += int_at_least(config, "iterations", 1)
    problems += number_in(config, "sleep_s", 0.0, float("inf"))
    if "fail_above" in config and not is_number(config["fail_above"]):
        problems.append((("config", "fail_above"), "must be a number"))
    if "checkpoint" in config and not isinstance(config["checkpoint"], bool):
        problems.append((("config", "checkpoint"), "must be true or false"))
    if "fail_with" in config and config["fail_with"] not in FAILURES:
        problems.append((("config", "fail_with"), f"must be one of {', '.join(FAILURES)}"))
    if "report_log" in config and not isinstance(config["report_log"], str):
        problems.append((("config", "report_log"), "must be a file path"))
    return problems


SPEC = register(
    TrainableSpec(
        name="noop",
        description=(
            "Sleeps `sleep_s` and reports a deterministic `loss` each of `iterations` "
            "iterations (sum of squares of numeric x* parameters + 1 - t/iterations); "
            "checkpoints only with `checkpoint: true`; raises at iteration 2 when "
            "`x` > `fail_above` (`fail_with`: error, oom or invalid_config); appends "
            '"trial_id iteration" to `report_log` before each report. For overhead '
            "benchmarks and tests."
        ),
        metrics=("loss", "epoch"),
        default_metric="loss",
        default_mode="min",
        default_search_space={"x": {"type": "uniform", "low": -1.0, "high": 1.0}},
        default_config={"iterations": 10, "sleep_s": 0.1, "checkpoint": False},
        fidelity_key="iterations",
        uses_train_workers=False,
        fn=run,
        validate=validate,
    )
)
