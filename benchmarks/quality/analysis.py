"""Pure parts of the search-quality benchmark: budget accounting, regret curves, statistics.

A run is the list of results its trials reported, in the order they reached the Tune
driver. Every result is one epoch (one unit of the trainable's fidelity) of one trial, so
the budget spent after the k-th result is k epochs. The curve of a run is the best value
reported so far (every fidelity counts: for the synthetic functions a low-fidelity loss is
the objective plus a non-negative penalty, an upper bound of the point's true value) minus
a reference value (the known optimum, or the best value any run of the problem reached).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Regret below this is drawn (log axis) and summarised at this floor.
REGRET_FLOOR = 1e-6


def budget_of(epochs: Sequence[int | None]) -> list[int]:
    """Budget spent after each result (arrival order): each result is one epoch."""
    return list(range(1, len(epochs) + 1))


def best_so_far(
    values: Sequence[float | None],
    epochs: Sequence[int | None] | None = None,
    *,
    full_fidelity: int | None = None,
) -> np.ndarray:
    """Running minimum of ``values`` (NaN until the first counted one).

    With ``full_fidelity``, only results whose epoch equals it count (the conservative
    variant: an incumbent must have been trained to the end).
    """
    out = np.full(len(values), np.nan)
    best = math.inf
    for i, value in enumerate(values):
        counted = value is not None and math.isfinite(float(value))
        if counted and full_fidelity is not None:
            counted = epochs is not None and epochs[i] == full_fidelity
        if counted:
            best = min(best, float(value))  # type: ignore[arg-type]
        if best < math.inf:
            out[i] = best
    return out


def regret_curve(
    values: Sequence[float | None],
    reference: float,
    budget: int,
    *,
    epochs: Sequence[int | None] | None = None,
    full_fidelity: int | None = None,
) -> np.ndarray:
    """Regret after 1, 2, ..., ``budget`` epochs (index b-1 = after b epochs).

    Results past ``budget`` are cut. A run that stopped short of ``budget`` keeps its last
    value (it was given no more; flagged by the caller). NaN where nothing counted yet.
    """
    running = best_so_far(
        values[:budget], epochs[:budget] if epochs else None, full_fidelity=full_fidelity
    )
    curve = np.full(budget, np.nan)
    curve[: len(running)] = running - reference
    if 0 < len(running) < budget:
        curve[len(running) :] = curve[len(running) - 1]
    return curve


def bootstrap_mean_ci(
    samples: np.ndarray, *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 (seeds) and its percentile-bootstrap band, for each column."""
    samples = np.asarray(samples, dtype=float)
    if samples.ndim == 1:
        samples = samples[:, None]
    n = samples.shape[0]
    mean = np.nanmean(samples, axis=0)
    if n < 2:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(resamples, n))
    means = np.nanmean(samples[picks], axis=1)  # (resamples, columns)
    alpha = (1.0 - level) / 2.0
    low = np.nanquantile(means, alpha, axis=0)
    high = np.nanquantile(means, 1.0 - alpha, axis=0)
    return mean, low, high


def area_under(curve: np.ndarray) -> float:
    """Mean regret over the budget axis (area under the curve / budget); NaNs skipped."""
    finite = curve[np.isfinite(curve)]
    return float(finite.mean()) if finite.size else math.nan


def paired_wilcoxon(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    """Two-sided Wilcoxon signed-rank test of paired samples (same seeds).

    p = 1 when every pair is equal (no evidence of a difference); None when fewer than
    two pairs.
    """
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    diff = x - y
    result: dict[str, Any] = {
        "n": int(x.size),
        "median_difference": float(np.median(diff)) if diff.size else None,
    }
    if x.size < 2:
        return {**result, "statistic": None, "p_value": None}
    if np.all(diff == 0):
        return {**result, "statistic": 0.0, "p_value": 1.0}
    test = wilcoxon(x, y, alternative="two-sided")
    return {**result, "statistic": float(test.statistic), "p_value": float(test.pvalue)}


def first_budget_reaching(curve: np.ndarray, level: float) -> int | None:
    """The first budget (epochs, 1-based) at which ``curve`` is <= ``level``; None if never."""
    hits = np.nonzero(np.asarray(curve) <= level)[0]
    return int(hits[0]) + 1 if hits.size else None


@dataclass(frozen=True)
class MethodSummary:
    method: str
    seeds: int
    final_mean: float
    final_low: float
    final_high: float
    final_median: float
    auc_mean: float
    short_runs: int  # runs that ended before the common budget


def curves_of(
    runs: Sequence[Mapping[str, Any]],
    reference: float,
    budget: int,
    *,
    full_fidelity: int | None = None,
) -> np.ndarray:
    """(seeds, budget) regret matrix of runs, in the order given."""
    return np.stack(
        [
            regret_curve(
                run["values"],
                reference,
                budget,
                epochs=run.get("epochs"),
                full_fidelity=full_fidelity,
            )
            for run in runs
        ]
    )


def summarize(method: str, matrix: np.ndarray, short_runs: int = 0) -> MethodSummary:
    final = matrix[:, -1]
    mean, low, high = bootstrap_mean_ci(final)
    return MethodSummary(
        method=method,
        seeds=int(matrix.shape[0]),
        final_mean=float(mean[0]),
        final_low=float(low[0]),
        final_high=float(high[0]),
        final_median=float(np.nanmedian(final)),
        auc_mean=float(np.nanmean([area_under(row) for row in matrix])),
        short_runs=short_runs,
    )
