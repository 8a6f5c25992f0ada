"""Analysis of a finished (or partial) run: regret curves, summaries, tests, the table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from benchmarks.quality.analysis import (
    area_under,
    bootstrap_mean_ci,
    curves_of,
    first_budget_reaching,
    paired_wilcoxon,
    summarize,
)
from benchmarks.quality.problems import (
    DIRECT_BOHB,
    METHODS,
    PAIRS,
    RANDOM,
    SERVICE_BOHB,
)

ALPHA = 0.05
BOHB_TARGET_FRACTION = 0.2


def good_runs(
    runs: Sequence[Mapping[str, Any]], seeds: set[int] | None = None
) -> list[Mapping[str, Any]]:
    """Runs that returned results (of ``seeds`` only, when given), by seed."""
    return sorted(
        (r for r in runs if r.get("values") and (seeds is None or int(r["seed"]) in seeds)),
        key=lambda r: int(r["seed"]),
    )


def complete_seeds(problem: Mapping[str, Any]) -> set[int]:
    """Seeds every method that ran at all has a run of: means are over the same seeds."""
    per_method = [
        {int(r["seed"]) for r in good_runs(runs)}
        for runs in problem["runs"].values()
        if good_runs(runs)
    ]
    return set.intersection(*per_method) if per_method else set()


def reference_of(problem: Mapping[str, Any]) -> tuple[float, str]:
    """The value regret is measured from: the known optimum, else the best any run got."""
    settings = problem["settings"]
    if settings.get("optimum") is not None:
        return float(settings["optimum"]), "known optimum"
    budget = int(problem["budget"])
    best = math.inf
    for runs in problem["runs"].values():
        for run in good_runs(runs):
            finite = [v for v in run["values"][:budget] if v is not None and math.isfinite(v)]
            if finite:
                best = min(best, min(finite))
    return best, f"best {settings['metric']} of any run within the budget"


def analyze_problem(problem: Mapping[str, Any]) -> dict[str, Any]:
    budget = int(problem["budget"])
    max_t = int(problem["settings"]["max_t"])
    reference, reference_kind = reference_of(problem)
    common = complete_seeds(problem)
    matrices: dict[str, np.ndarray] = {}
    seeds: dict[str, list[int]] = {}
    methods: dict[str, Any] = {}
    for method in METHODS:
        every = problem["runs"].get(method, [])
        runs = good_runs(every, common)
        abandoned = sum(1 for r in every if r.get("abandoned"))
        failed = sum(1 for r in every if not r.get("values") and not r.get("abandoned"))
        if not runs:
            if every:
                methods[method] = {"seeds": 0, "failed_runs": failed, "abandoned_runs": abandoned}
            continue
        matrix = curves_of(runs, reference, budget)
        matrices[method] = matrix
        seeds[method] = [int(r["seed"]) for r in runs]
        short = sum(1 for r in runs if len(r["values"]) < budget)
        full_only = curves_of(runs, reference, budget, full_fidelity=max_t)[:, -1]
        methods[method] = {
            **asdict(summarize(method, matrix, short)),
            "failed_runs": failed,
            "abandoned_runs": abandoned,  # in flight at the run's hard deadline
            "runs_outside_common_seeds": len(good_runs(every)) - len(runs),
            "final_full_fidelity_mean": (
                float(np.nanmean(full_only)) if np.isfinite(full_only).any() else math.nan
            ),
            "wall_s_mean": float(np.mean([r.get("wall_s", math.nan) for r in runs])),
            "trials_mean": float(np.mean([r.get("trials", math.nan) for r in runs])),
        }
    pairs = []
    for service, direct in PAIRS:
        if service not in matrices or direct not in matrices:
            continue
        paired = sorted(set(seeds[service]) & set(seeds[direct]))
        a = matrices[service][[seeds[service].index(s) for s in paired]]
        b = matrices[direct][[seeds[direct].index(s) for s in paired]]
        final = paired_wilcoxon(a[:, -1], b[:, -1])
        auc = paired_wilcoxon([area_under(r) for r in a], [area_under(r) for r in b])
        p_values = [p for p in (final["p_value"], auc["p_value"]) if p is not None]
        pairs.append(
            {
                "service": service,
                "direct": direct,
                "seeds": len(paired),
                "final": final,
                "auc": auc,
                "no_significant_difference": bool(p_values) and min(p_values) >= ALPHA,
            }
        )
    bohb = []
    if RANDOM in matrices:
        random_final_mean = float(np.nanmean(matrices[RANDOM][:, -1]))
        random_final_median = float(np.nanmedian(matrices[RANDOM][:, -1]))
        for method in (SERVICE_BOHB, DIRECT_BOHB):
            if method not in matrices:
                continue
            mean_curve = np.nanmean(matrices[method], axis=0)
            median_curve = np.nanmedian(matrices[method], axis=0)
            at_mean = first_budget_reaching(mean_curve, random_final_mean)
            at_median = first_budget_reaching(median_curve, random_final_median)
            bohb.append(
                {
                    "method": method,
                    "random_final_mean": random_final_mean,
                    "budget_to_reach_mean": at_mean,
                    "fraction_mean": at_mean / budget if at_mean else None,
                    "random_final_median": random_final_median,
                    "budget_to_reach_median": at_median,
                    "fraction_median": at_median / budget if at_median else None,
                    "target_met": at_mean is not None and at_mean / budget <= BOHB_TARGET_FRACTION,
                }
            )
    return {
        "budget": budget,
        "seeds": sorted(common),
        "reference": reference,
        "reference_kind": reference_kind,
        "methods": methods,
        "pairs": pairs,
        "bohb_vs_random": bohb,
    }


def curve_bands(
    problem: Mapping[str, Any],
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per method: mean regret and its 95% bootstrap band at every budget (for plots)."""
    budget = int(problem["budget"])
    reference, _ = reference_of(problem)
    bands: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    common = complete_seeds(problem)
    for method in METHODS:
        runs = good_runs(problem["runs"].get(method, []), common)
        if runs:
            bands[method] = bootstrap_mean_ci(curves_of(runs, reference, budget), resamples=500)
    return bands


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if x != 0 and (abs(x) < 1e-2 or abs(x) >= 1e4):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{digits + 1}g}"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def markdown(analysis: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [
        "| problem | method | seeds | final regret, mean [95% CI] | median "
        "| mean regret over budget (AUC) | final, full-fidelity results only |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, a in analysis.items():
        for method, m in a["methods"].items():
            flags = []
            if m["failed_runs"]:
                flags.append(f"{m['failed_runs']} failed")
            if m["abandoned_runs"]:
                flags.append(f"{m['abandoned_runs']} cut by the deadline")
            if m.get("short_runs"):
                flags.append(f"{m['short_runs']} short")
            note = f" ({', '.join(flags)})" if flags else ""
            if not m["seeds"]:
                lines.append(
                    f"| {name} (budget {a['budget']}) | {method} | 0{note} | "
                    "no finished run | | | |"
                )
                continue
            lines.append(
                f"| {name} (budget {a['budget']}) | {method} | {m['seeds']}{note} | "
                f"{_fmt(m['final_mean'])} [{_fmt(m['final_low'])}, {_fmt(m['final_high'])}] | "
                f"{_fmt(m['final_median'])} | {_fmt(m['auc_mean'])} | "
                f"{_fmt(m['final_full_fidelity_mean'])} |"
            )
    lines += [
        "",
        "| problem | service vs direct | seeds | p final (Wilcoxon) | p AUC "
        "| no significant difference (p >= 0.05) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, a in analysis.items():
        for pair in a["pairs"]:
            lines.append(
                f"| {name} | {pair['service']} vs {pair['direct']} | {pair['seeds']} | "
                f"{_p(pair['final']['p_value'])} | {_p(pair['auc']['p_value'])} | "
                f"{'yes' if pair['no_significant_difference'] else 'NO'} |"
            )
    lines += [
        "",
        "| problem | BOHB | random's final mean regret | BOHB mean reaches it at "
        "| / budget (target <= 0.2 on hartmann6) | same with medians |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, a in analysis.items():
        for row in a["bohb_vs_random"]:
            frac = row["fraction_mean"]
            frac_median = row["fraction_median"]
            lines.append(
                f"| {name} | {row['method']} | {_fmt(row['random_final_mean'])} | "
                f"{row['budget_to_reach_mean'] or 'never'} of {a['budget']} | "
                f"{'-' if frac is None else f'{frac:.3f}'} | "
                f"{'-' if frac_median is None else f'{frac_median:.3f}'} |"
            )
    return "\n".join(lines)
