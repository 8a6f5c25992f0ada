"""The snapshot's choices (service.api.snapshot): which curves, which numbers, the steps."""

from __future__ import annotations

import datetime as dt

from service.api.snapshot import MAX_CURVES, best_steps, pick_curves, spread
from service.store import TrialRecord, TrialState


def trial(
    number: int, best: float | None, state: TrialState = TrialState.TERMINATED
) -> TrialRecord:
    return TrialRecord(
        study_id=1,
        trial_id=f"t{number}",
        number=number,
        config={},
        state=state,
        error=None,
        last_value=best,
        best_value=best,
        num_results=1,
        last_iteration=1,
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        finished_at=None,
    )


def test_few_trials_are_all_drawn() -> None:
    trials = [trial(i, float(i)) for i in range(10)]
    assert pick_curves(trials, "min") == trials


def test_many_trials_best_running_and_a_spread() -> None:
    trials = [
        trial(i, float(i), TrialState.RUNNING if i % 100 == 7 else TrialState.TERMINATED)
        for i in range(1000)
    ]
    for mode, best in (("min", range(100)), ("max", range(900, 1000))):
        chosen = pick_curves(trials, mode)
        numbers = {t.number for t in chosen}
        assert len(chosen) == MAX_CURVES
        assert set(best) <= numbers  # the best half
        assert {i for i in range(1000) if i % 100 == 7} <= numbers  # the running
        rest = sorted(numbers - set(best) - {i for i in range(1000) if i % 100 == 7})
        assert rest[0] < 300 and rest[-1] > 800  # spread over the rest


def test_spread_and_steps() -> None:
    assert spread(5, 10) == [0, 1, 2, 3, 4]
    assert spread(100, 4) == [0, 25, 50, 75]
    assert best_steps([(1, 3.0), (4, 1.0)], 5) == [[1, 3.0], [4, 1.0], [5, 1.0]]
    assert best_steps([(1, 3.0), (2, 4.0)], 2) == [[1, 3.0], [2, 4.0]]
    assert best_steps([], 7) == []
