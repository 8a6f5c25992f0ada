"""Cross-field checks of a study spec: trainable, metric, space vs algorithm, resources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search_spaces import InvalidSpec, SearchSpace, parse_space
from service.spec import VARIANT_KEY, StudySpec
from trainables import (
    TrainableSpec,
    TrialResources,
    UnknownTrainable,
    get_trainable,
    list_trainables,
)

Loc = tuple[str | int, ...]

MULTI_FIDELITY_SCHEDULERS = frozenset({"asha", "hyperband", "median", "pbt"})


class _Candidates:
    """Values a config key may take: searched (the search space) or fixed (the config)."""

    def __init__(self, fixed_config: Mapping[str, Any], space: SearchSpace) -> None:
        self._fixed, self._space = fixed_config, space

    def of(self, key: str) -> tuple[Loc, tuple[Any, ...] | None] | None:
        searched = self._space.possible_values(key)
        if searched is not None:
            loc, values = searched
            return ("search_space", *loc), values
        if key in self._fixed:
            return ("config", key), (self._fixed[key],)
        return None


@dataclass(frozen=True)
class ClusterCapacity:
    """What the Ray cluster can ever give one trial (summed over alive nodes)."""

    cpus: float
    gpus: float


@dataclass(frozen=True)
class ValidatedStudy:
    """A spec that passed every check, with what the runner needs already resolved."""

    spec: StudySpec
    trainable: TrainableSpec
    space: SearchSpace
    metric: str
    mode: str
    resources: TrialResources
    fixed_config: Mapping[str, Any]  # trainable defaults overlaid with the study's config
    max_t: int | None  # fidelity budget of one trial, for multi-fidelity schedulers
    space_document: Mapping[str, Any]  # the space searched, in the study language

    def trial_config(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """What the trainable gets: the fixed config, the overrides of the variant the
        trial drew (``variants``), then the trial's other searched values."""
        return merge_trial_config(self.fixed_config, self.spec.variants, sampled)

    def planned_iterations(self, sampled: Mapping[str, Any]) -> int | None:
        """Iterations a trial with these sampled parameters runs when nothing stops it:
        its fidelity (e.g. epochs), capped by the scheduler's max_t."""
        key = self.trainable.fidelity_key
        if key is None:
            return None
        budgets = [
            int(value)
            for value in (self.trial_config(sampled).get(key), self.max_t)
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        return min(budgets) if budgets else None

    @property
    def trial_budget(self) -> int:
        """How many trials the study runs at most."""
        algorithm = self.spec.algorithm.name
        if algorithm in ("random", "grid"):
            return (self.space.grid_size(algorithm) or 1) * self.spec.num_samples
        return self.spec.num_samples


def merge_trial_config(
    fixed_config: Mapping[str, Any],
    variants: Mapping[str, Mapping[str, Any]] | None,
    sampled: Mapping[str, Any],
) -> dict[str, Any]:
    """A trial's config: fixed, then its variant's overrides, then its searched values."""
    if not variants:
        return {**fixed_config, **sampled}
    overrides = variants.get(str(sampled.get(VARIANT_KEY)), {})
    searched = {key: value for key, value in sampled.items() if key != VARIANT_KEY}
    return {**fixed_config, **overrides, **searched}


def validate_study(spec: StudySpec, capacity: ClusterCapacity | None = None) -> ValidatedStudy:
    """Every check that needs more than one field. Raises InvalidSpec listing every problem."""
    problems: list[tuple[Loc, str]] = []
    try:
        trainable = get_trainable(spec.trainable)
    except UnknownTrainable:
        known = ", ".join(sorted(t.name for t in list_trainables()))
        raise InvalidSpec(
            ("trainable",), f"unknown trainable {spec.trainable!r}; known: {known}"
        ) from None

    metric = spec.metric or trainable.default_metric
    mode = spec.mode or (trainable.default_mode if metric == trainable.default_metric else None)
    if metric in trainable.final_metrics:
        problems.append(
            (
                ("metric",),
                f"{metric!r} is reported once, at the end of a trial; searchers and "
                f"schedulers need a metric of every iteration: {', '.join(trainable.metrics)}",
            )
        )
    elif metric not in trainable.metrics:
        problems.append(
            (
                ("metric",),
                f"trainable {trainable.name!r} does not report {metric!r}; "
                f"it reports: {', '.join(trainable.metrics)}",
            )
        )
    if mode is None:
        problems.append((("mode",), f"say whether {metric!r} is to be minimised or maximised"))

    if spec.search_space:
        space_document = dict(spec.search_space)
    else:
        # With the trainable's default space, a key the study fixes in config leaves the
        # search (a user's own space must not name it twice: that is refused below).
        space_document = {
            key: value
            for key, value in trainable.default_search_space.items()
            if key not in spec.config
        }
    space: SearchSpace | None = None
    try:
        space = parse_space(space_document)
        space.check_algorithm(spec.algorithm.name)
    except InvalidSpec as error:
        problems.extend((("search_space", *loc), msg) for loc, msg in error.errors)

    problems.extend(_check_scheduler(spec, trainable))
    if spec.scheduler.name == "pbt" and space is not None:
        problems.extend(_check_pbt_space(space, trainable))
    for key in spec.config:
        if key in space_document:
            problems.append(
                (("config", key), f"{key!r} is also a search_space parameter; keep it in one place")
            )

    resources = TrialResources(
        num_workers=spec.resources.num_workers,
        use_gpu=spec.resources.use_gpu,
        cpus_per_worker=spec.resources.cpus_per_worker,
        tensor_parallel=spec.resources.tensor_parallel,
    )
    problems.extend(_check_resources(spec, trainable, capacity))
    fixed_config = {**trainable.default_config, **spec.config}
    if trainable.validate is not None:
        problems.extend(trainable.validate(fixed_config, resources))
    if trainable.validate_candidates is not None and space is not None:
        problems.extend(trainable.validate_candidates(_Candidates(fixed_config, space), resources))

    if space is not None:
        problems.extend(_check_variants(spec, trainable, space, fixed_config, resources))

    max_t = spec.scheduler.max_t
    if max_t is None and trainable.fidelity_key:
        budget = fixed_config.get(trainable.fidelity_key)
        max_t = int(budget) if isinstance(budget, int | float) and budget >= 1 else None
    if spec.scheduler.name in MULTI_FIDELITY_SCHEDULERS and max_t is None:
        problems.append((("scheduler", "max_t"), "set max_t, the iterations of a full trial"))
    if max_t is not None and spec.scheduler.grace_period > max_t:
        problems.append(
            (
                ("scheduler", "grace_period"),
                f"must be <= max_t ({max_t}), got {spec.scheduler.grace_period}",
            )
        )

    if problems or space is None:
        # One message per field: the generic check and the trainable's own may both
        # object to the same field; the first (generic) one is kept.
        unique = {loc: msg for loc, msg in reversed(problems)}
        raise InvalidSpec.many(list(reversed(unique.items())))
    assert mode is not None
    return ValidatedStudy(
        spec=spec,
        trainable=trainable,
        space=space,
        metric=metric,
        mode=mode,
        resources=resources,
        fixed_config=fixed_config,
        max_t=max_t,
        space_document=space_document,
    )


def _check_variants(
    spec: StudySpec,
    trainable: TrainableSpec,
    space: SearchSpace,
    fixed_config: Mapping[str, Any],
    resources: TrialResources,
) -> list[tuple[Loc, str]]:
    """``variants``: a `variant` parameter picks among them, and each variant's config
    (the fixed config with its overrides) passes the trainable's own checks."""
    if spec.variants is None:
        if spec.comparison is not None:
            return [(("variants",), "a comparison needs its variants")]
        return []
    import re

    from service.spec import VARIANT_NAME_PATTERN

    problems: list[tuple[Loc, str]] = []
    picked = space.possible_values(VARIANT_KEY)
    if picked is None or picked[1] is None:
        problems.append(
            (
                ("search_space", VARIANT_KEY),
                f"with variants, the search space needs a grid or choice {VARIANT_KEY!r} "
                "over their names",
            )
        )
    else:
        for value in picked[1]:
            if value not in spec.variants:
                problems.append(
                    (("search_space", *picked[0]), f"{value!r} is not one of the variants")
                )
    if spec.comparison is not None and spec.comparison.baseline not in spec.variants:
        problems.append((("comparison", "baseline"), "must name one of the variants"))
    searched = set(space.parameter_paths())
    for name, overrides in spec.variants.items():
        if not re.match(VARIANT_NAME_PATTERN, name) or len(name) > 64:
            problems.append(
                (
                    ("variants", name),
                    "a variant's name is 1-64 letters, digits, '_', '.' or '-' "
                    "(starting with a letter or digit)",
                )
            )
            continue
        for key in overrides:
            if key in searched:
                problems.append(
                    (("variants", name, key), f"{key!r} is searched; a variant cannot fix it")
                )
        problems.extend(
            _variant_problems(
                name, {**fixed_config, **overrides}, overrides, space, trainable, resources
            )
        )
    return problems


def _variant_problems(
    name: str,
    config: Mapping[str, Any],
    overrides: Mapping[str, Any],
    space: SearchSpace,
    trainable: TrainableSpec,
    resources: TrialResources,
) -> list[tuple[Loc, str]]:
    """The trainable's checks of one variant's config; only the problems of keys the
    variant sets (the others are the fixed config's, reported under ``config``)."""
    found: list[tuple[Loc, str]] = []
    if trainable.validate is not None:
        found.extend(trainable.validate(config, resources))
    if trainable.validate_candidates is not None:
        found.extend(trainable.validate_candidates(_Candidates(config, space), resources))
    return [
        (("variants", name, *loc[1:]), msg)
        for loc, msg in found
        if len(loc) >= 2 and loc[0] == "config" and loc[1] in overrides
    ]


def _check_scheduler(spec: StudySpec, trainable: TrainableSpec) -> list[tuple[Loc, str]]:
    algorithm, scheduler = spec.algorithm.name, spec.scheduler.name
    problems: list[tuple[Loc, str]] = []
    if algorithm == "bohb" and scheduler != "hyperband":
        problems.append(
            (
                ("scheduler", "name"),
                f"BOHB needs the multi-fidelity scheduler 'hyperband' (HyperBandForBOHB), "
                f"got {scheduler!r}",
            )
        )
    if scheduler in MULTI_FIDELITY_SCHEDULERS and trainable.fidelity_key is None:
        problems.append(
            (
                ("scheduler", "name"),
                f"{scheduler!r} stops trials early, but trainable {trainable.name!r} reports "
                "only once; use 'fifo'",
            )
        )
    if scheduler == "pbt" and algorithm != "random":
        problems.append(
            (
                ("algorithm", "name"),
                f"PBT explores by mutating running trials; it starts from random samples, "
                f"not from {algorithm!r}: use 'random'",
            )
        )
    if algorithm == "grid" and spec.stop.time_budget_s is None and spec.num_samples > 1_000:
        problems.append(
            (("num_samples",), "grid repeats the whole grid num_samples times; too many")
        )
    return problems


def _check_pbt_space(space: SearchSpace, trainable: TrainableSpec) -> list[tuple[Loc, str]]:
    """PBT mutates every searched parameter mid-trial: each must be one it can change."""
    try:
        space.to_pbt_mutations()
    except InvalidSpec as error:
        return [(("search_space", *loc), msg) for loc, msg in error.errors]
    if trainable.pbt_mutable is None:
        return []
    allowed = ", ".join(sorted(trainable.pbt_mutable))
    return [
        (
            ("search_space", path),
            f"PBT copies weights between trials, so it cannot change {path!r} mid-trial; "
            f"fix it in config and search over: {allowed}",
        )
        for path in space.parameter_paths()
        if path.split(".")[0] not in trainable.pbt_mutable
    ]


def _check_resources(
    spec: StudySpec, trainable: TrainableSpec, capacity: ClusterCapacity | None
) -> list[tuple[Loc, str]]:
    res = spec.resources
    problems: list[tuple[Loc, str]] = []
    if not trainable.uses_train_workers and res.num_workers != 1:
        problems.append(
            (
                ("resources", "num_workers"),
                f"trainable {trainable.name!r} runs in one process; num_workers must be 1",
            )
        )
    if res.tensor_parallel != 1 and not trainable.supports_tensor_parallel:
        problems.append(
            (
                ("resources", "tensor_parallel"),
                f"trainable {trainable.name!r} does not support tensor parallelism",
            )
        )
    if capacity is None:
        return problems
    workers = res.num_workers * res.tensor_parallel
    shape = (
        f"{res.num_workers} workers x tensor_parallel {res.tensor_parallel}"
        if res.tensor_parallel > 1
        else f"{res.num_workers} workers"
    )
    cpus_needed = workers * res.cpus_per_worker
    if cpus_needed > capacity.cpus + 1e-9:
        problems.append(
            (
                ("resources",),
                f"one trial needs {cpus_needed:g} CPUs ({shape} x {res.cpus_per_worker:g} "
                f"CPUs); the Ray cluster has {capacity.cpus:g}",
            )
        )
    if res.use_gpu and workers > capacity.gpus + 1e-9:
        problems.append(
            (
                ("resources", "use_gpu"),
                f"one trial needs {workers} GPUs ({shape}); the Ray cluster has {capacity.gpus:g}",
            )
        )
    return problems
