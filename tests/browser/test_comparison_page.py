"""A comparison's page in headless Chromium, on a comparison written straight into the
store (no Ray): the report table and chart appear, agree with the API, and refresh as
runs finish."""

from __future__ import annotations

import random
from typing import Any

import httpx

from service.comparisons.spec import parse_comparison, study_document
from service.spec import spec_from_mapping
from service.store import ResultWrite, StudyStatus, StudyStore, TrialState, TrialUpdate
from tests.browser.test_api_page import open_page, server  # noqa: F401  (the fixture)

COMPARISON = {
    "name": "page-comparison",
    "trainable": "transformer_lm",
    "baseline": {"evals": 2},
    "variants": {"bf16": {"precision": "bf16"}, "window": {"attention": "window"}},
    "repeats": 3,
}
# Per variant: how val_loss and peak memory move against the baseline.
EFFECT = {"baseline": (0.0, 1.0), "bf16": (0.3, 0.5), "window": (-0.2, 0.8)}


def run(store: StudyStore, study_id: int, variant: str, seed: int, rng: random.Random) -> None:
    trial_id = f"{variant}-{seed}"
    store.upsert_trials(
        study_id,
        [TrialUpdate(trial_id, TrialState.RUNNING, config={"variant": variant, "seed": seed})],
    )
    loss_shift, memory = EFFECT[variant]
    for iteration in (1, 2):
        metrics = {
            "val_loss": 3.0 - iteration * 0.5 + loss_shift + rng.uniform(-0.01, 0.01),
            "val_accuracy": 0.3 + iteration * 0.05 + rng.uniform(-0.01, 0.01),
            "peak_mem_mb": 1000 * memory * rng.uniform(0.99, 1.01),
            "train_time_s": 10.0 * iteration,
            "tokens_per_s": 5000.0,
            "latency_ms": 4.0,
        }
        store.add_results(study_id, [ResultWrite(trial_id, iteration, metrics)])
    store.upsert_trials(study_id, [TrialUpdate(trial_id, TrialState.TERMINATED)])


def test_the_comparison_card_shows_the_report(server: Any, page: Any) -> None:  # noqa: F811
    url, token, store = server
    spec = spec_from_mapping(study_document(parse_comparison(COMPARISON)))
    study = store.create_study(
        name="page-comparison", spec=spec.model_dump(mode="json"), metric="val_loss", mode="min"
    )
    store.transition_study(study.id, StudyStatus.RUNNING)
    rng = random.Random(3)
    for variant in EFFECT:
        for seed in (0, 1):
            run(store, study.id, variant, seed, rng)
    open_page(page, url, token, study.id)
    page.wait_for_selector("#comparison-table tbody tr.variant", timeout=20_000)
    rows = page.locator("#comparison-table tbody tr.variant")
    assert rows.count() == 2 and rows.nth(0).locator("td").nth(0).inner_text() == "bf16"
    assert rows.nth(0).locator("td").nth(1).inner_text() == "2/3"
    # The third seed arrives: the report follows (the table and chart are fetched again).
    for variant in EFFECT:
        run(store, study.id, variant, 2, rng)
    page.wait_for_function(
        "document.querySelector('#comparison-table tbody tr.variant td:nth-child(2)')"
        ".innerText === '3/3'",
        timeout=20_000,
    )
    headers = {"Authorization": f"Bearer {token}"}
    report = httpx.get(f"{url}/api/v1/comparisons/{study.id}", headers=headers).json()["report"]
    bf16 = next(row for row in report["rows"] if row["variant"] == "bf16")
    memory = bf16["metrics"]["peak_mem_mb"]
    assert memory["significant"] and -52 < memory["delta"] < -48
    cell = (
        page.locator("#comparison-table tbody tr.variant")
        .nth(0)
        .locator("td[data-metric='peak_mem_mb']")
    )
    assert cell.inner_text().startswith(f"{memory['delta']:+.2f}") and cell.inner_text().endswith(
        "*"
    )
    page.wait_for_function(
        "document.querySelector('#comparison-chart').complete && "
        "document.querySelector('#comparison-chart').naturalWidth > 100",
        timeout=20_000,
    )
