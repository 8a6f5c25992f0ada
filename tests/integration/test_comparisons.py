"""A comparison on the session's real Ray cluster (CPU): the tiny transformer's baseline
against token dropout and gradient accumulation, 2 seeds each (a paired interval needs
no more; each seed is a Ray Train run), reported with intervals that agree with what the
stored trials say."""

from __future__ import annotations

import csv
import io
import math
import statistics
from typing import Any

import pytest
from scipy import stats

from service.comparisons.outcomes import summarize
from tests.fixtures.service import LiveService, wait_for_status

pytestmark = pytest.mark.ray

TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}
REPEATS = 2
# The tiny CPU model, cut to seconds a run: 2 evaluations of 3 steps, one eval batch.
BASELINE = {
    "evals": 2,
    "steps_per_eval": 3,
    "eval_batches": 1,
    "batch_size": 8,
    "seq_len": 32,
    "compress_eval": False,
    "corpus_bytes": 200_000,
    "checkpoint_every": 0,
}
COMPARISON = {
    "name": "playbook-cpu",
    "trainable": "transformer_lm",
    "baseline": BASELINE,
    "variants": {"token_dropout": {"token_dropout": 0.2}, "accum2": {"grad_accum_steps": 2}},
    "repeats": REPEATS,
}


def test_a_comparison_reports_deltas_that_match_the_trials(live_service: LiveService) -> None:
    with live_service.client() as client:
        created = client.compare(COMPARISON)
        assert created.budget == 3 * REPEATS and created.variants == ["token_dropout", "accum2"]
        done = wait_for_status(client, created.id, TERMINAL, 900)
        assert done.status == "COMPLETED", done.error
        comparison = client.comparison(created.id)
        markdown = client.comparison_report(created.id, "markdown")
        table = client.comparison_report(created.id, "csv")
        chart = client.comparison_chart(created.id)
        trials = client.trials(created.id, limit=100).items
        results = {t.trial_id: client.results(created.id, t.trial_id).items for t in trials}

    assert comparison.status == "COMPLETED" and len(trials) == 3 * REPEATS
    assert {(t.config["variant"], t.config["seed"]) for t in trials} == {
        (v, s) for v in ("baseline", "token_dropout", "accum2") for s in range(REPEATS)
    }
    # Recompute every cell from the stored results: paired by seed, t-interval.
    summary = {
        (t.config["variant"], t.config["seed"]): summarize(results[t.trial_id])  # type: ignore[arg-type]
        for t in trials
    }
    rows = {row["variant"]: row for row in comparison.report["rows"]}
    assert list(rows) == ["token_dropout", "accum2"]
    kinds = {m["key"]: m["kind"] for m in comparison.report["metrics"]}
    for variant, row in rows.items():
        assert row["failed"] == 0
        for key, kind in kinds.items():
            cell = row["metrics"][key]
            deltas = [
                delta(kind, summary[(variant, s)][key], summary[("baseline", s)][key])
                for s in range(REPEATS)
            ]
            mean = statistics.fmean(deltas)
            half = stats.t.ppf(0.975, REPEATS - 1) * statistics.stdev(deltas) / math.sqrt(REPEATS)
            assert cell["n"] == REPEATS
            assert cell["delta"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
            assert cell["ci_low"] == pytest.approx(mean - half, rel=1e-9, abs=1e-12)
            assert cell["ci_high"] == pytest.approx(mean + half, rel=1e-9, abs=1e-12)
            assert cell["significant"] == (not cell["ci_low"] <= 0 <= cell["ci_high"])
    # The same numbers in markdown and CSV, and a chart.
    assert markdown.splitlines()[0].startswith("| variant")
    assert "token_dropout" in markdown and "accum2" in markdown
    parsed = list(csv.DictReader(io.StringIO(table)))
    assert len(parsed) == 2 * len(kinds)
    for line in parsed:
        cell = rows[line["variant"]]["metrics"][line["metric"]]
        assert float(line["delta"]) == pytest.approx(cell["delta"])
    assert chart.startswith(b"\x89PNG")


def delta(kind: str, variant: Any, baseline: Any) -> float:
    if kind == "points":
        return (variant - baseline) * 100
    if kind == "percent":
        return (variant / baseline - 1) * 100
    return float(variant - baseline)
