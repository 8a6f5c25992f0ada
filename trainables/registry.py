"""The registry of trainables: what a trial can run, its metrics, defaults and static checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# A problem found by a static check: where (a path into the study spec) and what.
Problem = tuple[tuple[Any, ...], str]


@dataclass(frozen=True)
class TrialResources:
    """What one trial may use, from the study's ``resources``."""

    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    tensor_parallel: int = 1

    @property
    def total_workers(self) -> int:
        """Ray Train workers of one trial: ``num_workers`` data-parallel replicas, each of
        ``tensor_parallel`` workers."""
        return self.num_workers * self.tensor_parallel


TrialFunction = Callable[[dict[str, Any], TrialResources], None]
Validator = Callable[[Mapping[str, Any], TrialResources], list[Problem]]


class Candidates(Protocol):
    """The values a config key may take in a study: fixed in its config or searched."""

    def of(self, key: str) -> tuple[tuple[Any, ...], tuple[Any, ...] | None] | None:
        """``(where in the spec, its possible values)``; values ``None`` when continuous or
        too many to list; ``None`` when the key is neither fixed nor searched."""
        ...


CandidateValidator = Callable[[Candidates, TrialResources], list[Problem]]


@dataclass(frozen=True)
class TrainableSpec:
    """A trainable as the service sees it.

    ``fn`` is the body of a Tune function trainable: the runner calls it inside each
    trial with ``{**default_config, **study_config, **sampled_params}`` and the study's
    resources; it reports every iteration with ``ray.tune.report``.
    """

    name: str
    description: str
    metrics: tuple[str, ...]  # every metric it reports each iteration
    default_metric: str
    default_mode: str  # "min" | "max"
    default_search_space: Mapping[str, Any]  # in the study search-space language
    default_config: Mapping[str, Any]  # fixed defaults merged under the study's config
    fidelity_key: str | None  # config key holding the number of iterations (the budget)
    uses_train_workers: bool  # True: runs a Ray Train TorchTrainer inside the trial
    fn: TrialFunction
    validate: Validator | None = None  # static checks of config + resources
    # Checks over every value a key may take (fixed or searched): shapes that must agree
    # for every trial, refused before any trial starts.
    validate_candidates: CandidateValidator | None = None
    supports_tensor_parallel: bool = False
    # Config keys population-based training may change mid-trial (it copies a trial's
    # weights into another): not the model's shape. None: every key.
    pbt_mutable: frozenset[str] | None = None
    # Reported once, with the last iteration's metrics (not every iteration).
    final_metrics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.default_mode not in ("min", "max"):
            raise ValueError(f"{self.name}: default_mode must be 'min' or 'max'")
        if self.default_metric not in self.metrics:
            raise ValueError(f"{self.name}: default_metric {self.default_metric!r} is not reported")


class UnknownTrainable(KeyError):
    """No trainable is registered under this name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        return f"unknown trainable {self.name!r}; registered: {known}"


_REGISTRY: dict[str, TrainableSpec] = {}


def register(spec: TrainableSpec) -> TrainableSpec:
    """Add ``spec`` under its name; registering the same spec again is a no-op."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing is not spec:
        raise ValueError(f"a different trainable is already registered as {spec.name!r}")
    _REGISTRY[spec.name] = spec
    return spec


def get_trainable(name: str) -> TrainableSpec:
    """The trainable registered as ``name``; raises ``UnknownTrainable``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTrainable(name) from None


def list_trainables() -> list[TrainableSpec]:
    """All registered trainables, by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
