"""The study specification users write (pydantic models) and its parsing from JSON/YAML."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from search_spaces import InvalidSpec

MAX_NUM_SAMPLES = 100_000
MAX_NAME_LENGTH = 200
MAX_TRAINABLE_LENGTH = 100
MAX_METRIC_LENGTH = 100
# Bounds on everything a spec holds (search_space and config are free-form JSON), so a
# hostile document is refused with 422 before anything walks, stores or launches it.
MAX_SEARCH_SPACE_PARAMS = 256  # parameter definitions, counting groups' and branches'
MAX_KEY_LENGTH = 200
MAX_STRING_LENGTH = 10_000
MAX_LIST_LENGTH = 10_000  # items of a list (choice or grid values), entries of a mapping
MAX_DEPTH = 32  # levels of nested mappings and lists below the document
MAX_VALUES = 100_000  # values in the whole document (YAML aliases can repeat a subtree)
MAX_PROBLEMS = 50  # bound problems reported at once

Algorithm = Literal["random", "grid", "hyperopt", "bohb"]
SchedulerName = Literal["fifo", "asha", "hyperband", "median", "pbt"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlgorithmSpec(_Strict):
    name: Algorithm = "random"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    # HyperOpt: random trials before TPE takes over (Ray's default is 20).
    n_initial_points: int | None = Field(default=None, ge=1, le=10_000)


class SchedulerSpec(_Strict):
    name: SchedulerName = "fifo"
    # The fidelity budget of one trial in iterations; defaults to the trainable's
    # fidelity (e.g. config.epochs).
    max_t: int | None = Field(default=None, ge=1, le=1_000_000)
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=3, ge=2, le=100)
    # median stopping: how many trials must report before it stops any.
    min_samples_required: int = Field(default=3, ge=1)
    # pbt: iterations between exploit/explore steps, the share of trials that copy the
    # best ones, and how often a mutated value is drawn afresh rather than perturbed.
    perturbation_interval: int = Field(default=2, ge=1, le=1_000_000)
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)
    resample_probability: float = Field(default=0.25, ge=0, le=1)


class ResourcesSpec(_Strict):
    num_workers: int = Field(default=1, ge=1, le=1024)
    use_gpu: bool = False
    cpus_per_worker: float = Field(default=1.0, gt=0, le=1024)
    tensor_parallel: int = Field(default=1, ge=1, le=64)


class StopSpec(_Strict):
    time_budget_s: float | None = Field(default=None, gt=0, le=30 * 24 * 3600)
    # A trial whose worker process or node is lost is retried from its last checkpoint
    # this many times (other trial errors are never retried).
    max_failures: int = Field(default=2, ge=0, le=100)
    # A study whose Ray job dies (driver killed, head restarted) is resubmitted and resumes
    # from Tune's experiment state this many times before it is marked FAILED.
    max_restarts: int = Field(default=3, ge=0, le=100)


VARIANT_KEY = "variant"  # the search-space parameter that picks one of ``variants``
MAX_VARIANTS = 50
VARIANT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class ComparisonMeta(_Strict):
    """Marks a study made by ``POST /comparisons``: which variant is the baseline, how
    many seeds each variant runs, and the config key that carries the seed."""

    baseline: str = Field(default="baseline", min_length=1, max_length=64)
    repeats: int = Field(ge=1, le=100)
    seed_key: str = Field(default="seed", min_length=1, max_length=MAX_KEY_LENGTH)


class StudySpec(_Strict):
    """What a user submits. Cross-field checks that need the trainable registry, the
    search-space parser or the cluster live in :mod:`service.validation`."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    trainable: str = Field(min_length=1, max_length=MAX_TRAINABLE_LENGTH)
    metric: str | None = Field(default=None, min_length=1, max_length=MAX_METRIC_LENGTH)
    mode: Literal["min", "max"] | None = None
    # Empty: the trainable's default search space.
    search_space: dict[str, Any] | None = None
    algorithm: AlgorithmSpec = AlgorithmSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    # Trials to run; for a grid, how many times to run every point (default 1, else 10).
    num_samples: int = Field(default=None, ge=1, le=MAX_NUM_SAMPLES)  # type: ignore[assignment]
    max_concurrent_trials: int | None = Field(default=None, ge=1, le=10_000)
    resources: ResourcesSpec = ResourcesSpec()
    config: dict[str, Any] = Field(default_factory=dict)
    stop: StopSpec = StopSpec()
    # Named partial configs: a trial's config is the fixed config, then the overrides of
    # the variant its `variant` parameter names, then its other searched values.
    variants: dict[str, dict[str, Any]] | None = Field(default=None, max_length=MAX_VARIANTS)
    comparison: ComparisonMeta | None = None
    # Warm-start the searcher from this study's runs (same trainable, space, metric and
    # algorithm): it has learnt from every trial there and does not rerun them.
    warm_start_from: int | None = Field(default=None, ge=1, le=2**31 - 1)

    @model_validator(mode="after")
    def _default_num_samples(self) -> StudySpec:
        if self.num_samples is None:
            self.num_samples = 1 if self.algorithm.name == "grid" else 10
        return self

    @field_validator("algorithm", mode="before")
    @classmethod
    def _algorithm_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("scheduler", mode="before")
    @classmethod
    def _scheduler_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


def parse_spec_document(body: bytes, content_type: str | None) -> dict[str, Any]:
    """Decode a request body (JSON or YAML) into a mapping. Raises InvalidSpec."""
    kind = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidSpec((), f"the body is not UTF-8 text: {error}") from error
    if not text.strip():
        raise InvalidSpec((), "the body is empty; send a study spec as JSON or YAML")
    what = "JSON" if kind.endswith("json") else "YAML or JSON"
    parse = json.loads if kind.endswith("json") else _load_yaml  # YAML reads JSON too
    try:
        document = parse(text)
    except RecursionError:
        raise InvalidSpec(
            (), f"the body is nested too deeply (at most {MAX_DEPTH} levels)"
        ) from None
    except (ValueError, yaml.YAMLError) as error:
        # ValueError: JSONDecodeError, and integers too long to convert (over 4300 digits).
        raise InvalidSpec((), f"the body is not valid {what}: {_clip(str(error))}") from None
    if not isinstance(document, dict):
        raise InvalidSpec((), f"a study spec must be a mapping, not {type(document).__name__}")
    return document


def spec_from_mapping(document: dict[str, Any]) -> StudySpec:
    """Validate bounds, field types and ranges. Raises InvalidSpec with every problem's
    path."""
    problems = bound_problems(document)
    if problems:
        raise InvalidSpec.many(problems)
    try:
        return StudySpec.model_validate(document)
    except ValidationError as error:
        raise InvalidSpec.many(
            [(tuple(item["loc"]), item["msg"]) for item in error.errors()]
        ) from error


# libyaml's safe loader when present: it parses a large body many times faster.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


Loc = tuple[str | int, ...]


def bound_problems(document: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Problems with the size of a raw spec document: nesting depth, key and string
    lengths, list lengths, values that are not JSON data, the number of values and of
    search-space parameters. Safe on any document (cyclic or alias-bombed YAML too)."""
    bounds = _Bounds()
    bounds.walk(document, (), 0)
    space = document.get("search_space")
    if not bounds.problems and isinstance(space, Mapping):
        count = count_parameters(space)
        if count > MAX_SEARCH_SPACE_PARAMS:
            bounds.problems.append(
                (
                    ("search_space",),
                    f"defines {count} parameters (counting those of groups and conditional "
                    f"branches); at most {MAX_SEARCH_SPACE_PARAMS}",
                )
            )
    return bounds.problems


def count_parameters(space: Mapping[str, Any]) -> int:
    """Parameter definitions (mappings with ``type``) in a search-space document, those in
    groups and in conditional branches included. Expects a document within the bounds."""
    count = 0
    levels: list[Mapping[Any, Any]] = [space]
    while levels:
        for key, value in levels.pop().items():
            if key == "value" or not isinstance(value, Mapping):
                continue  # a branch's own value, or an invalid entry the parser reports
            if "type" not in value:
                levels.append(value)  # a group
                continue
            count += 1
            options = value.get("values")
            if isinstance(options, list):
                levels.extend(option for option in options if isinstance(option, Mapping))
    return count


_QUOTE_IT = " (in YAML, quote it: yes, on and dates are read as booleans and dates)"


class _Bounds:
    def __init__(self) -> None:
        self.problems: list[tuple[Loc, str]] = []
        self.values = 0

    def fail(self, loc: Loc, msg: str) -> None:
        self.problems.append((loc, msg))

    def walk(self, value: Any, loc: Loc, depth: int) -> None:
        if len(self.problems) >= MAX_PROBLEMS or self.values > MAX_VALUES:
            return
        self.values += 1
        if self.values > MAX_VALUES:
            self.fail((), f"the spec holds more than {MAX_VALUES} values")
            return
        if isinstance(value, str):
            self.string(value, loc, MAX_STRING_LENGTH)
        elif isinstance(value, float):
            if not math.isfinite(value):
                self.fail(loc, f"numbers must be finite, got {value!r}")
        elif value is None or isinstance(value, (bool, int)):
            return
        elif isinstance(value, (Mapping, list)):
            if depth >= MAX_DEPTH:
                self.fail(loc, f"nested too deeply (at most {MAX_DEPTH} levels)")
            elif len(value) > MAX_LIST_LENGTH:
                what = "entries" if isinstance(value, Mapping) else "items"
                self.fail(loc, f"has {len(value)} {what}; at most {MAX_LIST_LENGTH}")
            elif isinstance(value, Mapping):
                for key, item in value.items():
                    if not isinstance(key, str):
                        self.fail(
                            loc + (_clip(str(key), 50),),
                            f"keys must be strings, got {_clip(repr(key), 50)}{_QUOTE_IT}",
                        )
                    elif self.string(key, loc + (_clip(key, 50),), MAX_KEY_LENGTH, "key"):
                        self.walk(item, loc + (key,), depth + 1)
            else:
                for index, item in enumerate(value):
                    self.walk(item, loc + (index,), depth + 1)
        else:
            self.fail(
                loc,
                "must be JSON data (a mapping, list, string, number, boolean or null), "
                f"got {type(value).__name__}{_QUOTE_IT}",
            )

    def string(self, text: str, loc: Loc, limit: int, what: str = "string") -> bool:
        if len(text) > limit:
            self.fail(loc, f"{what} of {len(text)} characters; at most {limit}")
            return False
        if "\x00" in text:
            self.fail(loc, f"{what} holds a NUL character")
            return False
        return True
