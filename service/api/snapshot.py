"""The study page's first view (``/snapshot``): what the page draws, bounded by what it
draws rather than by the study's size.

- Up to ``FULL_TRIALS`` trials, every trial's row (``complete``: the page then sorts
  and charts them itself, as before); beyond, a sample: ``SAMPLE_TRIALS`` trials evenly
  spread over the study's numbers (the parameter charts), plus the trials with curves.
- Learning curves for at most ``MAX_CURVES`` trials, chosen as the page chooses them:
  the best half, the running up to three quarters, an even sample of the rest.
- For a sampled study, the best-so-far steps (where the best of the finished trials
  improved, in the order they finished), which the store keeps on the study's row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from service.api.documents import study_public_and_revision
from service.store import StudyStore, TrialRecord, TrialState

FULL_TRIALS = 1000
SAMPLE_TRIALS = 500
MAX_CURVES = 200  # the page's MAX_CURVES


def build(store: StudyStore, study_id: int) -> tuple[dict[str, Any], int]:
    """The snapshot document and the study revision it shows at least. Events after its
    ``last_event_id`` may repeat parts of it; the page applies them idempotently. Raises
    StudyNotFound."""
    last_event_id = store.last_event_id(study_id)
    public, revision = study_public_and_revision(store, study_id)
    trials: Sequence[TrialRecord] = ()
    complete = public.num_trials <= FULL_TRIALS
    if complete:
        trials = store.list_trials(study_id, limit=FULL_TRIALS + 1).items
        complete = len(trials) <= FULL_TRIALS  # it may have grown since
    if complete:
        curves_of = pick_curves([t for t in trials if t.num_results], public.mode)
    else:
        sample = store.trials_by_numbers(study_id, spread(public.num_trials, SAMPLE_TRIALS))
        curves_of = sampled_curves(store, study_id, sample)
        trials = _unique([*sample, *curves_of])
    curves: dict[str, list[list[Any]]] = {}
    chosen = [t.trial_id for t in curves_of]
    for trial_id, iteration, value in store.metric_series(study_id, chosen) if chosen else ():
        curve = curves.setdefault(trial_id, [[], []])
        curve[0].append(iteration)
        curve[1].append(value if isinstance(value, int | float) else None)
    document: dict[str, Any] = {
        "last_event_id": last_event_id,
        "study": public.model_dump(mode="json"),
        "complete": complete,
        "trials": [_trial_row(t) for t in trials],
        "curves": curves,
    }
    if not complete:
        finished = sum(public.trial_counts.get(s.value, 0) for s in TrialState if s.is_finished)
        document["best_steps"] = best_steps(store.best_steps(study_id), finished)
    return document, revision


def pick_curves(with_data: Sequence[TrialRecord], mode: str) -> list[TrialRecord]:
    """The page's choice (app.js pickCurves) among trials that have results."""
    if len(with_data) <= MAX_CURVES:
        return list(with_data)
    sign = 1.0 if mode == "min" else -1.0
    valued = [(sign * t.best_value, t) for t in with_data if t.best_value is not None]
    ranked = [t for _, t in sorted(valued, key=lambda pair: pair[0])]
    chosen = {t.trial_id: t for t in ranked[: MAX_CURVES // 2]}
    for t in with_data:
        if t.state == TrialState.RUNNING and len(chosen) < 3 * MAX_CURVES // 4:
            chosen.setdefault(t.trial_id, t)
    rest = [t for t in with_data if t.trial_id not in chosen]
    for t in evenly(rest, MAX_CURVES - len(chosen)):
        chosen.setdefault(t.trial_id, t)
    return list(chosen.values())


def sampled_curves(
    store: StudyStore, study_id: int, sample: Sequence[TrialRecord]
) -> list[TrialRecord]:
    """pick_curves without reading every trial: index reads of the best and the running,
    the rest from ``sample`` (trials at evenly spread numbers)."""
    best = store.list_trials(study_id, order="best", limit=MAX_CURVES // 2).items
    chosen = {t.trial_id: t for t in best if t.best_value is not None}
    running = store.list_trials(study_id, state=TrialState.RUNNING, limit=MAX_CURVES).items
    for t in running:
        if t.num_results and len(chosen) < 3 * MAX_CURVES // 4:
            chosen.setdefault(t.trial_id, t)
    rest = [t for t in sample if t.num_results and t.trial_id not in chosen]
    for t in evenly(rest, MAX_CURVES - len(chosen)):
        chosen.setdefault(t.trial_id, t)
    return list(chosen.values())


def spread(count: int, n: int) -> list[int]:
    """``n`` numbers evenly spread over 0 .. count-1 (all of them when count <= n)."""
    if count <= n:
        return list(range(count))
    return sorted({int(i * count / n) for i in range(n)})


def evenly(items: Sequence[TrialRecord], n: int) -> list[TrialRecord]:
    if n <= 0 or not items:
        return []
    if len(items) <= n:
        return list(items)
    return [items[int(i * len(items) / n)] for i in range(n)]


def best_steps(stored: Sequence[tuple[int, float]], finished: int) -> list[list[float]]:
    """The stored steps ([trials finished, best so far] where the best improved), and the
    best carried on to the trials finished now."""
    steps = [[count, value] for count, value in stored]
    if steps and steps[-1][0] < finished:
        steps.append([finished, steps[-1][1]])
    return steps


def _unique(trials: Iterable[TrialRecord]) -> list[TrialRecord]:
    seen: dict[str, TrialRecord] = {}
    for t in trials:
        seen.setdefault(t.trial_id, t)
    return sorted(seen.values(), key=lambda t: t.number)


def _trial_row(t: TrialRecord) -> dict[str, Any]:
    return {
        "trial_id": t.trial_id,
        "number": t.number,
        "state": t.state.value,
        "reason": t.reason,
        "config": t.config,
        "best_value": t.best_value,
        "last_value": t.last_value,
        "num_results": t.num_results,
        "last_iteration": t.last_iteration,
        "finished_at": t.finished_at.isoformat() if t.finished_at else None,
    }
