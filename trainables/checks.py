"""Small static checks shared by the trainables' ``validate`` functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainables.registry import Problem, TrialResources


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def int_at_least(config: Mapping[str, Any], key: str, minimum: int) -> list[Problem]:
    """``config[key]``, when present, is an integer >= ``minimum``."""
    if key not in config:
        return []
    value = config[key]
    if not (is_number(value) and float(value).is_integer()):
        return [(("config", key), f"must be an integer, got {value!r}")]
    if value < minimum:
        return [(("config", key), f"must be >= {minimum}, got {value!r}")]
    return []


def number_in(
    config: Mapping[str, Any],
    key: str,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> list[Problem]:
    """``config[key]``, when present, is a number within [low, high] (ends open if asked)."""
    if key not in config:
        return []
    value = config[key]
    if not is_number(value):
        return [(("config", key), f"must be a number, got {value!r}")]
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return [(("config", key), f"must be in {left}{low}, {high}{right}, got {value!r}")]
    return []


def one_of(config: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> list[Problem]:
    if key in config and config[key] not in allowed:
        return [(("config", key), f"must be one of {', '.join(allowed)}; got {config[key]!r}")]
    return []


def single_process(name: str, resources: TrialResources) -> list[Problem]:
    """Trainables that run inside the trial process use one worker and no tensor parallelism."""
    problems: list[Problem] = []
    if resources.num_workers != 1:
        problems.append(
            (
                ("resources", "num_workers"),
                f"{name} runs in the trial process; num_workers must be 1, "
                f"got {resources.num_workers}",
            )
        )
    if resources.tensor_parallel != 1:
        problems.append(
            (("resources", "tensor_parallel"), f"{name} has no tensor parallelism; must be 1")
        )
    if resources.cpus_per_worker <= 0:
        problems.append((("resources", "cpus_per_worker"), "must be > 0"))
    return problems
