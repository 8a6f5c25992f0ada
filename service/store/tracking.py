"""Keeping a trial's last/best metric and result counters current as new results arrive.

Pure functions over plain values; the SQL store feeds them only the rows a batch really
inserted, so a retried batch changes nothing.

- ``best_value``: the minimum (mode ``min``) or maximum (``max``) of the study metric
  over the trial's results.
- ``last_value``: the metric of the trial's newest result, by iteration. A result older
  than the newest one already stored (out of order) does not change it.
- A missing, non-numeric, boolean, NaN or infinite metric value never counts for either;
  the result itself is still stored and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from service.store.jsonsafe import finite_number


@dataclass(frozen=True)
class TrialStats:
    num_results: int
    last_iteration: int | None
    last_value: float | None
    best_value: float | None


def better(a: float, b: float, mode: str) -> float:
    return min(a, b) if mode == "min" else max(a, b)


def apply_results(stats: TrialStats, new: Iterable[tuple[int, object]], *, mode: str) -> TrialStats:
    """``stats`` after the results ``new`` = (iteration, metric value) were inserted."""
    rows = list(new)
    if not rows:
        return stats
    best = stats.best_value
    newest_numeric: tuple[int, float] | None = None
    for iteration, raw in rows:
        value = finite_number(raw)
        if value is None:
            continue
        best = value if best is None else better(best, value, mode)
        if newest_numeric is None or iteration >= newest_numeric[0]:
            newest_numeric = (iteration, value)
    last_value = stats.last_value
    if newest_numeric is not None and (
        stats.last_iteration is None or newest_numeric[0] >= stats.last_iteration
    ):
        last_value = newest_numeric[1]
    newest = max(iteration for iteration, _ in rows)
    last_iteration = newest if stats.last_iteration is None else max(stats.last_iteration, newest)
    return replace(
        stats,
        num_results=stats.num_results + len(rows),
        last_iteration=last_iteration,
        last_value=last_value,
        best_value=best,
    )
