"""What each variant of a comparison buys vs the baseline: paired-by-seed deltas with 95% CIs.

A comparison runs a baseline config and named variants, each with seeds ``0..repeats-1``.
`build_report` pairs every variant run with the baseline run of the same seed, takes the
per-metric delta of each pair (percentage points, absolute, or percent of the baseline) and
summarises the deltas as a mean with a 95% Student-t interval. The report renders itself
as JSON, a Markdown table, long-format CSV and a PNG bar chart. Pure: no Ray, no store.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MetricKind = Literal["points", "absolute", "percent"]
Better = Literal["higher", "lower"]

TERMINATED = "TERMINATED"
CONFIDENCE = 0.95


class InvalidComparison(ValueError):
    """The arguments of `build_report` do not describe one comparison (e.g. duplicate runs)."""


@dataclass(frozen=True)
class RunOutcome:
    """One trial's final metrics: ``variant`` is the baseline's or a variant's name."""

    variant: str
    seed: int
    metrics: Mapping[str, float | None]
    state: str  # the trial state, e.g. "TERMINATED", "ERROR", "PRUNED"


@dataclass(frozen=True)
class ReportMetric:
    """A metric of the report and how a variant's value is compared with the baseline's.

    ``points``: (v - b) * 100, for fractions such as accuracy; ``absolute``: v - b;
    ``percent``: (v / b - 1) * 100, pairs with b == 0 are skipped.
    """

    key: str
    label: str
    kind: MetricKind
    better: Better


DEFAULT_METRICS: tuple[ReportMetric, ...] = (
    ReportMetric("val_accuracy", "Δ val_accuracy (points)", "points", "higher"),
    ReportMetric("val_loss", "Δ val_loss", "absolute", "lower"),
    ReportMetric("train_time_s", "Δ training time (%)", "percent", "lower"),
    ReportMetric("peak_mem_mb", "Δ peak memory (%)", "percent", "lower"),
    ReportMetric("tokens_per_s", "Δ tokens/s (%)", "percent", "higher"),
    ReportMetric("latency_ms", "Δ latency (%)", "percent", "lower"),
)


@dataclass(frozen=True)
class Cell:
    """One variant x metric: mean paired delta, its 95% interval (None when n < 2)."""

    delta: float | None
    ci_low: float | None
    ci_high: float | None
    n: int  # paired seeds
    significant: bool  # the interval excludes zero
    baseline_mean: float | None  # over the paired seeds' raw values
    variant_mean: float | None


@dataclass(frozen=True)
class Row:
    """One variant: a cell per metric key; ``seeds`` runs found, ``failed`` not TERMINATED."""

    variant: str
    cells: dict[str, Cell]
    seeds: int
    failed: int


CELL_FIELDS = ("delta", "ci_low", "ci_high", "n", "significant", "baseline_mean", "variant_mean")


@dataclass(frozen=True)
class ComparisonReport:
    metrics: tuple[ReportMetric, ...]
    rows: tuple[Row, ...]
    baseline: str
    repeats: int
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "repeats": self.repeats,
            "confidence": CONFIDENCE,
            "metrics": [
                {"key": m.key, "label": m.label, "kind": m.kind, "better": m.better}
                for m in self.metrics
            ],
            "rows": [
                {
                    "variant": row.variant,
                    "seeds": row.seeds,
                    "failed": row.failed,
                    "metrics": {m.key: _cell_dict(row.cells[m.key]) for m in self.metrics},
                }
                for row in self.rows
            ],
            "notes": list(self.notes),
        }

    def to_markdown(self) -> str:
        header = ["variant", *(_md_escape(m.label) for m in self.metrics)]
        lines = [
            "| " + " | ".join(header) + " |",
            "| --- |" + " ---: |" * len(self.metrics),
        ]
        for row in self.rows:
            cells = [
                _md_escape(row.variant),
                *(_format_cell(row.cells[m.key]) for m in self.metrics),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Mean paired difference vs `{_md_escape(self.baseline)}` over seeds "
            f"(up to {self.repeats}), with its {CONFIDENCE:.0%} t-interval in brackets; "
            "`*` = the interval excludes zero; n/a = no seed with both runs finished "
            "and reporting the metric.",
        ]
        if self.notes:
            lines += ["", "Notes:", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["variant", "metric", *CELL_FIELDS])
        for row in self.rows:
            for metric in self.metrics:
                cell = _cell_dict(row.cells[metric.key])
                writer.writerow(
                    [row.variant, metric.key, *(_csv_value(cell[f]) for f in CELL_FIELDS)]
                )
        return out.getvalue()

    def bar_chart_png(self) -> bytes:
        """One panel per metric: a bar per variant at its delta, the 95% CI as whiskers."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        columns = min(2, len(self.metrics))
        panel_rows = math.ceil(len(self.metrics) / columns)
        panel_height = 1.2 + 0.45 * max(1, len(self.rows))
        fig = Figure(figsize=(6.0 * columns, panel_height * panel_rows + 0.6), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(panel_rows, columns, squeeze=False).ravel()
        for ax, metric in zip(axes, self.metrics, strict=False):
            _draw_panel(ax, metric, self.rows)
        for ax in axes[len(self.metrics) :]:
            ax.set_visible(False)
        fig.suptitle(
            f"vs {self.baseline}: mean paired Δ over up to {self.repeats} seeds, "
            f"{CONFIDENCE:.0%} CI; colored = significant (green better, red worse)",
            fontsize=9,
        )
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def build_report(
    outcomes: Iterable[RunOutcome],
    *,
    baseline: str = "baseline",
    variants: Sequence[str],
    repeats: int,
    metrics: Sequence[ReportMetric] = DEFAULT_METRICS,
) -> ComparisonReport:
    """Pair each variant's runs with the baseline's by seed and summarise every metric.

    Raises `InvalidComparison` for repeats < 1, no metrics, a duplicate metric key or
    variant, the baseline listed among the variants, or two runs of one variant and seed.
    Runs of unknown variants or seeds outside ``0..repeats-1`` are ignored with a note.
    """
    _check_arguments(baseline, variants, repeats, metrics)
    runs, notes = _index_runs(outcomes, baseline, variants, repeats)
    notes += _run_notes(baseline, runs[baseline], repeats)
    absent = [m.key for m in metrics if not _reported_anywhere(m.key, runs)]
    rows = []
    for variant in variants:
        notes += _run_notes(variant, runs[variant], repeats)
        cells = {}
        for metric in metrics:
            cell, cell_notes = _compare(metric, runs[baseline], runs[variant])
            cells[metric.key] = cell
            if metric.key not in absent:
                notes += [f"{variant}: {note}" for note in cell_notes]
        failed = sum(1 for run in runs[variant].values() if run.state != TERMINATED)
        rows.append(Row(variant, cells, seeds=len(runs[variant]), failed=failed))
    if absent:
        notes.append("not reported by any run: " + ", ".join(absent))
    return ComparisonReport(tuple(metrics), tuple(rows), baseline, repeats, notes)


def _check_arguments(
    baseline: str, variants: Sequence[str], repeats: int, metrics: Sequence[ReportMetric]
) -> None:
    if isinstance(variants, str):
        raise InvalidComparison("variants must be a sequence of names, not one string")
    if repeats < 1:
        raise InvalidComparison(f"repeats must be at least 1, got {repeats}")
    if baseline in variants:
        raise InvalidComparison(f"the baseline {baseline!r} is also listed as a variant")
    for what, names in (("variant", list(variants)), ("metric key", [m.key for m in metrics])):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidComparison(f"duplicate {what}: {', '.join(duplicates)}")
    if not metrics:
        raise InvalidComparison("a report needs at least one metric")


def _index_runs(
    outcomes: Iterable[RunOutcome], baseline: str, variants: Sequence[str], repeats: int
) -> tuple[dict[str, dict[int, RunOutcome]], list[str]]:
    runs: dict[str, dict[int, RunOutcome]] = {name: {} for name in (baseline, *variants)}
    unknown: set[str] = set()
    out_of_range: set[tuple[str, int]] = set()
    for outcome in outcomes:
        if outcome.variant not in runs:
            unknown.add(outcome.variant)
        elif not 0 <= outcome.seed < repeats:
            out_of_range.add((outcome.variant, outcome.seed))
        elif outcome.seed in runs[outcome.variant]:
            raise InvalidComparison(f"two runs of {outcome.variant!r} with seed {outcome.seed}")
        else:
            runs[outcome.variant][outcome.seed] = outcome
    notes = []
    if unknown:
        notes.append("ignored runs of unknown variants: " + ", ".join(sorted(unknown)))
    if out_of_range:
        listed = ", ".join(f"{name} seed {seed}" for name, seed in sorted(out_of_range))
        notes.append(f"ignored runs with a seed outside 0..{repeats - 1}: {listed}")
    return runs, notes


def _run_notes(name: str, runs: Mapping[int, RunOutcome], repeats: int) -> list[str]:
    notes = []
    missing = [seed for seed in range(repeats) if seed not in runs]
    if missing:
        notes.append(f"{name}: no run for seed(s) {', '.join(map(str, missing))}")
    failed = sorted((seed, run.state) for seed, run in runs.items() if run.state != TERMINATED)
    if failed:
        listed = ", ".join(f"seed {seed} {state}" for seed, state in failed)
        notes.append(f"{name}: {len(failed)} of {len(runs)} run(s) not TERMINATED ({listed})")
    return notes


def _reported_anywhere(key: str, runs: Mapping[str, Mapping[int, RunOutcome]]) -> bool:
    return any(
        _finite(run.metrics.get(key)) is not None
        for by_seed in runs.values()
        for run in by_seed.values()
    )


def _compare(
    metric: ReportMetric, baseline: Mapping[int, RunOutcome], variant: Mapping[int, RunOutcome]
) -> tuple[Cell, list[str]]:
    deltas: list[float] = []
    base_values: list[float] = []
    variant_values: list[float] = []
    zero_baseline = 0
    for seed in sorted(set(baseline) & set(variant)):
        b_run, v_run = baseline[seed], variant[seed]
        if b_run.state != TERMINATED or v_run.state != TERMINATED:
            continue
        b, v = _finite(b_run.metrics.get(metric.key)), _finite(v_run.metrics.get(metric.key))
        if b is None or v is None:
            continue
        if metric.kind == "percent" and b == 0:
            zero_baseline += 1
            continue
        deltas.append(_delta(metric.kind, v, b))
        base_values.append(b)
        variant_values.append(v)
    notes = []
    if zero_baseline:
        notes.append(f"{metric.key} skipped {zero_baseline} seed(s) with a baseline value of 0")
    n = len(deltas)
    if n == 0:
        return Cell(None, None, None, 0, False, None, None), notes
    delta = statistics.fmean(deltas)
    means = statistics.fmean(base_values), statistics.fmean(variant_values)
    if n == 1:
        notes.append(f"{metric.key} has 1 paired seed; no interval")
        return Cell(delta, None, None, 1, False, *means), notes
    half = _t_quantile(n - 1) * statistics.stdev(deltas) / math.sqrt(n)
    low, high = delta - half, delta + half
    return Cell(delta, low, high, n, low > 0 or high < 0, *means), notes


def _delta(kind: MetricKind, variant: float, baseline: float) -> float:
    if kind == "points":
        return (variant - baseline) * 100
    if kind == "absolute":
        return variant - baseline
    return (variant / baseline - 1) * 100


def _t_quantile(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + CONFIDENCE / 2, dof))


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _cell_dict(cell: Cell) -> dict[str, Any]:
    return {name: getattr(cell, name) for name in CELL_FIELDS}


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _format_cell(cell: Cell) -> str:
    if cell.delta is None:
        return "n/a"
    if cell.ci_low is None or cell.ci_high is None:
        return f"{_signed(cell.delta, _decimals(cell.delta))} (n={cell.n})"
    decimals = _decimals(cell.delta, cell.ci_low, cell.ci_high)
    text = (
        f"{_signed(cell.delta, decimals)} "
        f"[{_signed(cell.ci_low, decimals)}, {_signed(cell.ci_high, decimals)}]"
    )
    return text + " *" if cell.significant else text


def _decimals(*values: float) -> int:
    """Two decimals, or enough to show two significant digits of the largest small value."""
    scale = max(abs(value) for value in values)
    if scale == 0 or scale >= 0.1:
        return 2
    return min(6, 1 - math.floor(math.log10(scale)))


def _signed(value: float, decimals: int) -> str:
    text = f"{value:+.{decimals}f}"
    return text.replace("-", "+", 1) if float(text) == 0 else text  # no "-0.00"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _draw_panel(ax: Any, metric: ReportMetric, rows: Sequence[Row]) -> None:
    positions = range(len(rows))
    cells = [row.cells[metric.key] for row in rows]
    widths = [cell.delta or 0.0 for cell in cells]
    ax.barh(positions, widths, color=[_bar_color(cell, metric.better) for cell in cells])
    for y, cell in zip(positions, cells, strict=True):
        if cell.delta is None:
            ax.text(0, y, " n/a", va="center", fontsize=8, color="#6b7280")
        elif cell.ci_low is not None and cell.ci_high is not None:
            error = [[cell.delta - cell.ci_low], [cell.ci_high - cell.delta]]
            ax.errorbar(cell.delta, y, xerr=error, fmt="none", ecolor="#111827", capsize=3)
    ax.axvline(0, color="#111827", linewidth=0.8)
    ax.set_yticks(list(positions), [row.variant for row in rows])
    ax.invert_yaxis()
    ax.set_title(metric.label, fontsize=10)
    ax.tick_params(labelsize=8)


def _bar_color(cell: Cell, better: Better) -> str:
    if not cell.significant or cell.delta is None:
        return "#9ca3af"
    improves = cell.delta > 0 if better == "higher" else cell.delta < 0
    return "#16a34a" if improves else "#dc2626"
