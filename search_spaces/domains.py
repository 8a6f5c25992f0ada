"""Typed domain objects of a parsed search space: what each parameter may take."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: A value a choice or grid may hold (JSON scalars).
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]``."""

    low: float
    high: float


@dataclass(frozen=True)
class LogUniform:
    """A float drawn log-uniformly from ``[low, high]`` (``0 < low``)."""

    low: float
    high: float


@dataclass(frozen=True)
class QUniform:
    """A float from ``[low, high]`` rounded to a multiple of ``q`` (bounds are multiples)."""

    low: float
    high: float
    q: float


@dataclass(frozen=True)
class RandInt:
    """An int drawn uniformly from ``low..high``, both inclusive."""

    low: int
    high: int


@dataclass(frozen=True)
class LogRandInt:
    """An int drawn log-uniformly from ``low..high``, both inclusive (``1 <= low``)."""

    low: int
    high: int


@dataclass(frozen=True)
class QRandInt:
    """An int multiple of ``q`` drawn uniformly from ``low..high``, both inclusive."""

    low: int
    high: int
    q: int


@dataclass(frozen=True)
class Branch:
    """One option of a conditional choice: its ``value`` and the sub-parameters it brings."""

    value: Scalar
    params: Mapping[str, Node]


@dataclass(frozen=True)
class Choice:
    """One of ``options``; an option that is a :class:`Branch` makes the choice conditional."""

    options: tuple[Scalar | Branch, ...]

    @property
    def values(self) -> tuple[Scalar, ...]:
        """The values the choice's key may hold in a trial's config."""
        return tuple(o.value if isinstance(o, Branch) else o for o in self.options)

    @property
    def is_conditional(self) -> bool:
        return any(isinstance(o, Branch) for o in self.options)


@dataclass(frozen=True)
class Grid:
    """Every one of ``values``, enumerated (Tune's grid search)."""

    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Group:
    """A nested mapping of parameters (a nested dict in the trial's config)."""

    params: Mapping[str, Node]


Node = Uniform | LogUniform | QUniform | RandInt | LogRandInt | QRandInt | Choice | Grid | Group
FloatRange = (Uniform, LogUniform, QUniform)
IntRange = (RandInt, LogRandInt, QRandInt)
Range = FloatRange + IntRange

#: The language's name of each domain type.
TYPE_NAMES: dict[type, str] = {
    Uniform: "uniform",
    LogUniform: "loguniform",
    QUniform: "quniform",
    RandInt: "randint",
    LogRandInt: "lograndint",
    QRandInt: "qrandint",
    Choice: "choice",
    Grid: "grid",
}
