"""What a study's next run ("segment") must do once its targets may have been raised.

A study runs as one Tune experiment; ``POST /studies/{id}/extend`` raises its
``num_samples`` or ``time_budget_s``, and the study goes on as a new experiment whose
searcher is warm-started from the last one (see :mod:`service.runner.warm_start`).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.store import StudyRecord

# A run with less time than this left is not started: Tune would stop it at once.
MIN_TIME_LEFT_S = 1.0


@dataclass(frozen=True)
class SegmentPlan:
    segment: int
    num_samples: int  # trials this run may start (a grid: how often to run every point)
    time_budget_s: float | None  # wall time left of the study's budget


def plan_segment(record: StudyRecord, trials_so_far: int) -> SegmentPlan | None:
    """The study's next run, or None when its targets are met (or its time is used up).
    The first run is the spec as it stands; a later one runs the trials still missing."""
    spec = record.spec
    segment = record.segments_done
    num_samples = int(spec.get("num_samples") or 1)
    budget = (spec.get("stop") or {}).get("time_budget_s")
    time_left = None if budget is None else float(budget) - record.run_seconds
    if segment == 0:
        return SegmentPlan(0, num_samples, time_left)
    remaining = num_samples - trials_so_far
    if remaining <= 0 or (time_left is not None and time_left < MIN_TIME_LEFT_S):
        return None
    return SegmentPlan(segment, remaining, time_left)
