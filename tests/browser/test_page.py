"""The web page on a live study in headless Chromium: list, live curves, charts, sorting."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.fixtures.service import LiveService, wait_for_status
from tests.fixtures.watch import TERMINAL, noop_spec

pytestmark = pytest.mark.ray


def number(text: str) -> float:
    return float(text.strip())


def test_live_study_page(live_service: LiveService, page: Any) -> None:
    spec = noop_spec(
        "browser-live",
        trials=8,
        iterations=16,
        sleep_s=0.12,
        scheduler={"name": "asha", "max_t": 16, "grace_period": 2, "reduction_factor": 2},
    )
    with live_service.client() as client:
        study = client.submit(spec)

    # The list shows the study; its link opens the study page.
    page.goto(live_service.url + "/")
    row = page.locator(f"#studies tr[data-study='{study.id}']")
    row.wait_for(timeout=20_000)
    assert "browser-live" in row.inner_text()
    row.locator("a.study-link").click()
    page.wait_for_url(f"**/studies/{study.id}")
    page.wait_for_selector("body[data-rendered=full]", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "browser-study-early.png"), full_page=True)

    # Curves appear and grow while the study runs (from the event stream, no reload).
    page.wait_for_function(
        "Number(document.querySelector('#curves').dataset.points || 0) > 0", timeout=120_000
    )
    first = int(page.locator("#curves").get_attribute("data-points") or 0)
    page.wait_for_function(
        f"Number(document.querySelector('#curves').dataset.points || 0) > {first}",
        timeout=120_000,
    )
    assert page.locator("#curves canvas").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "browser-study-running.png"), full_page=True)

    # The study ends: the page shows it without a reload, with everything the store has.
    page.wait_for_function(
        "['COMPLETED','FAILED','STOPPED'].includes(document.querySelector('#status').innerText)",
        timeout=240_000,
    )
    with live_service.client() as client:
        final = wait_for_status(client, study.id, TERMINAL, 60)
    page.wait_for_function(
        f"document.querySelector('#results').innerText === '{final.num_results}'", timeout=10_000
    )
    assert final.status == "COMPLETED"
    assert page.locator("#status").inner_text() == "COMPLETED"
    assert page.locator("#progress").inner_text().strip() == f"{final.num_trials}/{final.budget}"
    assert page.locator("#ray-link").get_attribute("href") == final.ray_dashboard_url
    assert int(page.locator("#best-chart").get_attribute("data-points") or 0) >= 1
    assert int(page.locator("#parallel").get_attribute("data-lines") or 0) == final.num_trials
    assert page.locator("#importance .row").count() == 3  # x1, x2, width
    pruned = final.trial_counts["PRUNED"]
    assert pruned >= 1, final.trial_counts  # ASHA stopped some trials early
    page.screenshot(path=str(ARTIFACTS / "browser-study-done.png"), full_page=True)

    # The table sorts by a column, both ways.
    rows = page.locator("#trials-table tbody tr")
    assert rows.count() == final.num_trials
    best_header = page.locator("#trials-table th[data-key='best']")
    best_header.click()
    ascending = [
        number(t) for t in page.locator("#trials-table tbody tr td:nth-child(3)").all_inner_texts()
    ]
    assert ascending == sorted(ascending)
    assert ascending[0] == pytest.approx(final.best_trial.best_value, rel=1e-3)
    page.locator("#trials-table th[data-key='best']").click()
    descending = [
        number(t) for t in page.locator("#trials-table tbody tr td:nth-child(3)").all_inner_texts()
    ]
    assert descending == sorted(descending, reverse=True)
    page.locator("#trials-table th[data-key='state']").click()
    states = page.locator("#trials-table tbody tr td:nth-child(2)").all_inner_texts()
    assert states == sorted(states)
    page.screenshot(path=str(ARTIFACTS / "browser-table-sorted.png"), full_page=True)

    page.locator("#back").click()
    page.locator(f"#studies tr[data-study='{study.id}']").wait_for()
    assert "COMPLETED" in page.locator(f"#studies tr[data-study='{study.id}']").inner_text()
