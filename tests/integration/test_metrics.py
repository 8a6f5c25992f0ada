"""GET /metrics after a real study: Prometheus series with real values, no auth needed."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.service import LiveService
from tests.fixtures.watch import FollowedStudy

pytestmark = pytest.mark.ray


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_after_a_study(live_service: LiveService, followed_study: FollowedStudy) -> None:
    httpx.get(f"{live_service.url}/api/v1/studies/{followed_study.study_id}").raise_for_status()
    answer = httpx.get(f"{live_service.url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    values = samples(answer.text)

    assert values[("hpo_studies", (("status", "COMPLETED"),))] >= 1
    assert values[("hpo_trials", (("state", "TERMINATED"),))] >= 4
    assert values[("hpo_results_ingested_total", ())] >= 32  # the followed study's results
    assert values[("hpo_ingest_lag_seconds_count", ())] >= 32
    lag_sum = values[("hpo_ingest_lag_seconds_sum", ())]
    assert 0 < lag_sum < 60 * values[("hpo_ingest_lag_seconds_count", ())]
    route = (
        "hpo_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/api/v1/studies/{study_id}"), ("status", "200")),
    )
    assert values[route] >= 1
    events = [k for k in values if k[0] == "hpo_http_request_duration_seconds_count"]
    assert any(("route", "/api/v1/studies/{study_id}/events") in k[1] for k in events)
