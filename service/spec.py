"""The study specification users write (pydantic models) and its parsing from JSON/YAML."""

from __future__ import annotations

import json
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


class StudySpec(_Strict):
    """What a user submits. Cross-field checks that need the trainable registry, the
    search-space parser or the cluster live in :mod:`service.validation`."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    trainable: str = Field(min_length=1, max_length=100)
    metric: str | None = Field(default=None, min_length=1, max_length=100)
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
    parse = json.loads if kind.endswith("json") else yaml.safe_load  # YAML reads JSON too
    try:
        document = parse(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        what = "JSON" if kind.endswith("json") else "YAML or JSON"
        raise InvalidSpec((), f"the body is not valid {what}: {error}") from error
    if not isinstance(document, dict):
        raise InvalidSpec((), f"a study spec must be a mapping, not {type(document).__name__}")
    return document


def spec_from_mapping(document: dict[str, Any]) -> StudySpec:
    """Validate field types and ranges. Raises InvalidSpec with every problem's path."""
    try:
        return StudySpec.model_validate(document)
    except ValidationError as error:
        raise InvalidSpec.many(
            [(tuple(item["loc"]), item["msg"]) for item in error.errors()]
        ) from error
