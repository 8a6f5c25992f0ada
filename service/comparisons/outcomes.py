"""Each run of a comparison as the report sees it: its variant, seed, state and the
summary of its results."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from service.comparisons.report import RunOutcome
from service.spec import VARIANT_KEY
from service.store import ResultRecord, StudyStore, TrialRecord, TrialState

# How a run's results become one number per metric. Rates and timings measured over each
# evaluation interval vary from one interval to the next (the first includes warm-up):
# their median stands for the run. Peak memory is the run's largest. Everything else (the
# validation metrics, cumulative training time) is what the last result says.
SUMMARIES = {"tokens_per_s": "median", "latency_ms": "median", "peak_mem_mb": "max"}


def load_outcomes(store: StudyStore, study_id: int, seed_key: str) -> list[RunOutcome]:
    """One outcome per (variant, seed): a run that was retried as a new trial (after its
    driver died) counts once, by its finished trial."""
    trials = store.list_trials(study_id, limit=100_000).items
    chosen: dict[tuple[str, int], TrialRecord] = {}
    for trial in trials:
        key = _run_key(trial.config, seed_key)
        if key is None:
            continue
        earlier = chosen.get(key)
        if earlier is None or _rank(trial) >= _rank(earlier):
            chosen[key] = trial
    return [
        RunOutcome(
            variant=variant,
            seed=seed,
            metrics=summarize(store.get_results(study_id, trial.trial_id)),
            state=trial.state.value,
        )
        for (variant, seed), trial in sorted(chosen.items())
    ]


def summarize(results: Sequence[ResultRecord]) -> dict[str, float | None]:
    """One value per metric of a run's results (see SUMMARIES)."""
    series: dict[str, list[float]] = {}
    for result in results:
        for key, value in result.metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                series.setdefault(key, []).append(float(value))
    summary: dict[str, float | None] = {}
    for key, values in series.items():
        how = SUMMARIES.get(key, "last")
        if how == "median":
            summary[key] = statistics.median(values)
        elif how == "max":
            summary[key] = max(values)
        else:
            summary[key] = values[-1]
    return summary


def _run_key(config: Mapping[str, Any], seed_key: str) -> tuple[str, int] | None:
    variant, seed = config.get(VARIANT_KEY), config.get(seed_key)
    if not isinstance(variant, str) or not isinstance(seed, int) or isinstance(seed, bool):
        return None
    return variant, seed


def _rank(trial: TrialRecord) -> tuple[int, int]:
    """A TERMINATED run wins over one that did not finish; then the later one."""
    return (1 if trial.state == TrialState.TERMINATED else 0, trial.number)
