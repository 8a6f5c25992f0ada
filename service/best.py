"""A study's best trial as something to reuse: a config to post back as a new study's
fixed ``config`` or a comparison's ``baseline``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.errors import NoBestTrial
from service.spec import VARIANT_KEY
from service.store import StudyStore
from service.store.frozen import thaw


@dataclass(frozen=True)
class BestTrial:
    study_id: int
    trial_id: str
    number: int
    state: str
    trainable: str
    metric: str
    mode: str
    value: float
    iteration: int | None  # the result that reached ``value``
    config: dict[str, Any]  # the study's fixed config with the trial's values
    params: dict[str, Any]  # the searched values alone
    metrics: dict[str, Any]  # that result's metrics
    resources: dict[str, Any] = field(default_factory=dict)


def best_trial_export(store: StudyStore, study_id: int) -> BestTrial:
    """Raises StudyNotFound, NoBestTrial."""
    summary = store.summarize_study(study_id)
    study, best = summary.study, summary.best_trial
    if best is None or best.best_value is None:
        raise NoBestTrial(study_id, study.metric)
    spec = thaw(study.spec)
    params = thaw(best.config)
    results = store.get_results(study_id, best.trial_id)
    best_result = _result_reaching(results, study.metric, best.best_value)
    return BestTrial(
        study_id=study_id,
        trial_id=best.trial_id,
        number=best.number,
        state=best.state.value,
        trainable=str(spec.get("trainable")),
        metric=study.metric,
        mode=study.mode,
        value=best.best_value,
        iteration=None if best_result is None else best_result.iteration,
        config=reusable_config(spec, params),
        params=params,
        metrics={} if best_result is None else thaw(best_result.metrics),
        resources=dict(spec.get("resources") or {}),
    )


def reusable_config(spec: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The fixed config, the variant's overrides (a comparison's trial) and the searched
    values, without what only made sense inside the study (the `variant` pick, and a
    comparison's seed, which the next comparison sets itself)."""
    config: dict[str, Any] = dict(spec.get("config") or {})
    variants = spec.get("variants") or {}
    if variants:
        config.update(variants.get(str(params.get(VARIANT_KEY)), {}))
    config.update({key: value for key, value in params.items() if key != VARIANT_KEY})
    comparison = spec.get("comparison")
    if comparison:
        config.pop(str(comparison.get("seed_key", "seed")), None)
    return config


def _result_reaching(results: Any, metric: str, value: float) -> Any:
    for result in results:
        reported = result.metrics.get(metric)
        if isinstance(reported, int | float) and float(reported) == value:
            return result
    return results[-1] if results else None
