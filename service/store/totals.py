"""The totals a study row keeps about its trials (counts per state, best trial, the
best-so-far steps), as the changes of one write transaction: collected while the write
runs, applied in one UPDATE.

Best-so-far steps: ``[finished, value]`` pairs, one each time a trial finishes with a
best value better than every trial that finished before it (``finished``: how many
trials had finished then, this one included). They are what the page's "best so far"
chart draws, kept here so that it never reads every finished trial. A result that
arrives after its trial finished (rare) changes the trial's best but not the steps.

Callers hold the study's row lock, so ``col = col + delta`` never loses an update and the
best trial read at the start of the transaction is still the study's best at its end.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Table

from service.store.states import FINISHED_TRIAL_STATES, TrialState

COUNT_COLUMNS = {state.value: f"trials_{state.value.lower()}" for state in TrialState}
FINISHED = frozenset(state.value for state in FINISHED_TRIAL_STATES)


def counts_of(row: Any) -> dict[str, int]:
    """Trial counts per state (every state present) from a study row."""
    return {state: int(getattr(row, column) or 0) for state, column in COUNT_COLUMNS.items()}


def is_better(
    value: float, pk: int, than_value: float | None, than_pk: int | None, mode: str
) -> bool:
    """Whether a trial (best ``value``, id ``pk``) ranks before the current best; ties go
    to the lower id (the earlier trial), as the by-best order has it."""
    if than_value is None or than_pk is None:
        return True
    if value == than_value:
        return pk < than_pk
    return value < than_value if mode == "min" else value > than_value


class TotalsChange:
    """What one write changes in a study row's totals."""

    def __init__(self, study_row: Any) -> None:
        self.mode: str = study_row.mode
        self.best_value: float | None = study_row.best_value
        self.best_pk: int | None = study_row.best_trial_pk
        self._best_changed = False
        self._counts: Counter[str] = Counter()
        self._finished = sum(counts_of(study_row)[state] for state in FINISHED)
        self._steps: list[list[float]] = [list(step) for step in study_row.best_steps or []]
        self._steps_changed = False

    def created(self, state: str) -> None:
        self._counts[state] += 1
        if state in FINISHED:
            self._finish(None)

    def moved(self, old: str, new: str, best_value: float | None = None) -> None:
        """A trial moved from state ``old`` to ``new``; ``best_value``: its best now."""
        if old != new:
            self._counts[old] -= 1
            self._counts[new] += 1
            if new in FINISHED and old not in FINISHED:
                self._finish(best_value)

    def _finish(self, value: float | None) -> None:
        self._finished += 1
        if value is None:
            return
        last = self._steps[-1][1] if self._steps else None
        if last is None or (value < last if self.mode == "min" else value > last):
            self._steps.append([self._finished, value])
            self._steps_changed = True

    def deleted(self, state: str) -> None:
        self._counts[state] -= 1

    def trial_best(self, pk: int, value: float | None) -> None:
        """A trial's best value is now ``value`` (best values only ever improve)."""
        if value is not None and is_better(value, pk, self.best_value, self.best_pk, self.mode):
            self.best_value, self.best_pk = value, pk
            self._best_changed = True

    def values(self, studies: Table) -> dict[str, Any]:
        """The UPDATE's SET clause: counters, best trial, and the next revision."""
        values: dict[str, Any] = {"revision": studies.c.revision + 1}
        for state, delta in self._counts.items():
            if delta:
                column = studies.c[COUNT_COLUMNS[state]]
                values[column.name] = column + delta
        if self._best_changed:
            values["best_trial_pk"] = self.best_pk
            values["best_value"] = self.best_value
        if self._steps_changed:
            values["best_steps"] = self._steps
        return values
