"""Comparison report: paired-by-seed deltas, 95% t-intervals, JSON/Markdown/CSV/PNG views."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Collection

import pytest

from service.comparisons import (
    DEFAULT_METRICS,
    InvalidComparison,
    ReportMetric,
    RunOutcome,
    build_report,
)

T_975_2DOF = 4.302652729911275  # Student t, 0.975 quantile, 2 degrees of freedom
LOSS = ReportMetric("val_loss", "Δ val_loss", "absolute", "lower")
ACCURACY = ReportMetric("val_accuracy", "Δ val_accuracy (points)", "points", "higher")
TIME = ReportMetric("train_time_s", "Δ training time (%)", "percent", "lower")


def runs(variant: str, key: str, values: list[float | None], failed: Collection[int] = ()):
    return [
        RunOutcome(variant, seed, {key: value}, "ERROR" if seed in failed else "TERMINATED")
        for seed, value in enumerate(values)
    ]


def test_hand_computed_interval_over_three_seeds():
    outcomes = runs("baseline", "val_loss", [0.5, 0.5, 0.5]) + runs(
        "big", "val_loss", [1.5, 2.5, 3.5]
    )
    report = build_report(outcomes, variants=["big"], repeats=3, metrics=[LOSS])
    cell = report.rows[0].cells["val_loss"]
    half = T_975_2DOF * 1.0 / math.sqrt(3)  # d = [1, 2, 3]: mean 2, sd 1
    assert cell.n == 3
    assert cell.delta == pytest.approx(2.0)
    assert cell.ci_low == pytest.approx(2.0 - half)
    assert cell.ci_high == pytest.approx(2.0 + half)
    assert not cell.significant  # the interval [-0.48, 4.48] holds zero
    assert cell.baseline_mean == pytest.approx(0.5)
    assert cell.variant_mean == pytest.approx(2.5)
    assert report.notes == []


def test_interval_excluding_zero_is_significant():
    outcomes = runs("baseline", "val_loss", [1.0, 1.0, 1.0]) + runs(
        "v", "val_loss", [2.0, 2.5, 3.0]
    )
    cell = (
        build_report(outcomes, variants=["v"], repeats=3, metrics=[LOSS]).rows[0].cells["val_loss"]
    )
    half = T_975_2DOF * 0.5 / math.sqrt(3)  # d = [1, 1.5, 2]: mean 1.5, sd 0.5
    assert (cell.ci_low, cell.ci_high) == (pytest.approx(1.5 - half), pytest.approx(1.5 + half))
    assert cell.significant


def test_points_kind_is_a_hundred_times_the_fraction_difference():
    outcomes = runs("baseline", "val_accuracy", [0.80, 0.81, 0.82]) + runs(
        "bf16", "val_accuracy", [0.83, 0.835, 0.84]
    )
    cell = (
        build_report(outcomes, variants=["bf16"], repeats=3, metrics=[ACCURACY])
        .rows[0]
        .cells["val_accuracy"]
    )
    assert cell.delta == pytest.approx((3.0 + 2.5 + 2.0) / 3)
    half = T_975_2DOF * 0.5 / math.sqrt(3)
    assert cell.ci_low == pytest.approx(2.5 - half)
    assert cell.significant


def test_percent_kind_with_zero_spread_collapses_to_the_point():
    outcomes = runs("baseline", "train_time_s", [100.0, 200.0, 400.0]) + runs(
        "fast", "train_time_s", [90.0, 180.0, 360.0]
    )
    cell = (
        build_report(outcomes, variants=["fast"], repeats=3, metrics=[TIME])
        .rows[0]
        .cells["train_time_s"]
    )
    assert cell.delta == pytest.approx(-10.0)
    assert cell.ci_low == cell.ci_high == cell.delta
    assert cell.significant
    assert cell.baseline_mean == pytest.approx(700 / 3)


def test_percent_kind_skips_a_zero_baseline_with_a_note():
    outcomes = runs("baseline", "train_time_s", [0.0, 100.0, 100.0]) + runs(
        "v", "train_time_s", [5.0, 110.0, 120.0]
    )
    report = build_report(outcomes, variants=["v"], repeats=3, metrics=[TIME])
    cell = report.rows[0].cells["train_time_s"]
    assert cell.n == 2
    assert cell.delta == pytest.approx(15.0)
    assert any("baseline value of 0" in note for note in report.notes)


def test_failed_variant_seed_is_not_paired_and_is_counted():
    outcomes = runs("baseline", "val_loss", [1.0, 1.0, 1.0]) + runs(
        "v", "val_loss", [2.0, 99.0, 3.0], failed={1}
    )
    report = build_report(outcomes, variants=["v"], repeats=3, metrics=[LOSS])
    row = report.rows[0]
    assert (row.seeds, row.failed) == (3, 1)
    cell = row.cells["val_loss"]
    assert cell.n == 2
    assert cell.delta == pytest.approx(1.5)  # seed 1's 99.0 is left out
    assert cell.variant_mean == pytest.approx(2.5)


def test_baseline_failures_unpair_seeds_and_are_noted():
    outcomes = runs("baseline", "val_loss", [1.0, 1.0, 1.0], failed={2}) + runs(
        "v", "val_loss", [2.0, 3.0, 4.0]
    )
    report = build_report(outcomes, variants=["v"], repeats=3, metrics=[LOSS])
    assert report.rows[0].cells["val_loss"].n == 2
    assert report.rows[0].failed == 0
    assert "baseline: 1 of 3 run(s) not TERMINATED (seed 2 ERROR)" in report.notes


def test_one_paired_seed_has_no_interval_and_a_note():
    outcomes = runs("baseline", "val_loss", [1.0, None]) + runs("bf16", "val_loss", [1.5, 2.0])
    report = build_report(outcomes, variants=["bf16"], repeats=2, metrics=[LOSS])
    cell = report.rows[0].cells["val_loss"]
    assert (cell.n, cell.delta, cell.ci_low, cell.ci_high) == (1, pytest.approx(0.5), None, None)
    assert not cell.significant
    assert "bf16: val_loss has 1 paired seed; no interval" in report.notes
    assert "+0.50 (n=1)" in report.to_markdown()


def test_missing_and_non_finite_metrics_give_empty_cells():
    outcomes = runs("baseline", "val_loss", [1.0, math.nan]) + runs("v", "val_loss", [2.0, 3.0])
    report = build_report(outcomes, variants=["v"], repeats=2, metrics=DEFAULT_METRICS)
    latency = report.rows[0].cells["latency_ms"]
    assert (latency.n, latency.delta, latency.ci_low, latency.significant) == (0, None, None, False)
    assert report.rows[0].cells["val_loss"].n == 1  # NaN is not a value
    assert any(
        note.startswith("not reported by any run:") and "latency_ms" in note
        for note in report.notes
    )
    assert "n/a" in report.to_markdown()


def test_rows_follow_the_given_variant_order_and_missing_runs_are_noted():
    outcomes = (
        runs("baseline", "val_loss", [1.0, 1.0])
        + runs("zeta", "val_loss", [2.0, 2.0])
        + runs("alpha", "val_loss", [3.0])
        + runs("stray", "val_loss", [0.0])
        + [RunOutcome("zeta", 7, {"val_loss": 0.0}, "TERMINATED")]
    )
    report = build_report(outcomes, variants=["zeta", "alpha"], repeats=2, metrics=[LOSS])
    assert [row.variant for row in report.rows] == ["zeta", "alpha"]
    assert report.rows[1].seeds == 1
    assert "alpha: no run for seed(s) 1" in report.notes
    assert "ignored runs of unknown variants: stray" in report.notes
    assert any("zeta seed 7" in note for note in report.notes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variants": ["baseline"], "repeats": 2}, "also listed as a variant"),
        ({"variants": ["a", "a"], "repeats": 2}, "duplicate variant"),
        ({"variants": ["a"], "repeats": 0}, "repeats"),
        ({"variants": ["a"], "repeats": 2, "metrics": []}, "at least one metric"),
        ({"variants": ["a"], "repeats": 2, "metrics": [LOSS, LOSS]}, "duplicate metric key"),
        ({"variants": "a", "repeats": 2}, "not one string"),
    ],
)
def test_invalid_arguments_are_refused(kwargs, message):
    with pytest.raises(InvalidComparison, match=message):
        build_report([], **kwargs)


def test_two_runs_of_one_seed_are_refused():
    outcomes = runs("baseline", "val_loss", [1.0]) * 2
    with pytest.raises(InvalidComparison, match="two runs"):
        build_report(outcomes, variants=[], repeats=1, metrics=[LOSS])


def example_report():
    outcomes = (
        runs("baseline", "val_loss", [1.0, 1.0, 1.0])
        + runs("good|pipe", "val_loss", [0.5, 0.6, 0.7])
        + runs("noisy", "val_loss", [0.0, 2.0, 1.1], failed={2})
    )
    return build_report(outcomes, variants=["good|pipe", "noisy"], repeats=3, metrics=[LOSS, TIME])


def test_json_shape_and_serialisable():
    data = example_report().to_json()
    json.dumps(data, allow_nan=False)
    assert [row["variant"] for row in data["rows"]] == ["good|pipe", "noisy"]
    good = data["rows"][0]
    assert (good["seeds"], good["failed"]) == (3, 0)
    assert set(good["metrics"]) == {"val_loss", "train_time_s"}
    assert set(good["metrics"]["val_loss"]) == {
        "delta",
        "ci_low",
        "ci_high",
        "n",
        "significant",
        "baseline_mean",
        "variant_mean",
    }
    assert good["metrics"]["val_loss"]["delta"] == pytest.approx(-0.4)
    assert data["rows"][1]["failed"] == 1


def test_markdown_table_marks_significant_cells():
    text = example_report().to_markdown()
    lines = text.splitlines()
    assert lines[0] == "| variant | Δ val_loss | Δ training time (%) |"
    assert lines[1].startswith("| --- |")
    good = next(line for line in lines if line.startswith("| good\\|pipe |"))
    assert "| -0.40 [-0.65, -0.15] * |" in good  # d = [-0.5, -0.4, -0.3]
    noisy = next(line for line in lines if line.startswith("| noisy |"))
    assert "*" not in noisy  # d = [-1, +1]: the interval holds zero
    assert "n/a" in noisy
    assert any("interval excludes zero" in line for line in lines)


def test_csv_is_long_format_and_parses_back():
    report = example_report()
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == 2 * 2
    assert list(rows[0]) == [
        "variant",
        "metric",
        "delta",
        "ci_low",
        "ci_high",
        "n",
        "significant",
        "baseline_mean",
        "variant_mean",
    ]
    first = rows[0]
    assert (first["variant"], first["metric"], first["significant"]) == (
        "good|pipe",
        "val_loss",
        "true",
    )
    assert float(first["delta"]) == pytest.approx(-0.4)
    assert int(first["n"]) == 3
    empty = next(r for r in rows if r["variant"] == "noisy" and r["metric"] == "train_time_s")
    assert (empty["delta"], empty["n"], empty["significant"]) == ("", "0", "false")


def test_bar_chart_is_a_png():
    png = example_report().bar_chart_png()
    assert png.startswith(b"\x89PNG")
    assert len(png) > 1000
