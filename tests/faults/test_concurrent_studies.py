"""Fault 7: 20 studies submitted at once by 4 principals to one service and one Ray
cluster: all complete, and each principal sees exactly its own."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.api.schemas import StudyPublic
from tests.fixtures.service import USERS, LiveService, wait_for_status
from tests.fixtures.watch import TERMINAL, noop_spec

pytestmark = pytest.mark.ray

STUDIES_EACH = 5


def test_twenty_concurrent_studies_of_four_principals(live_service: LiveService) -> None:
    principals = list(USERS[:4])
    assert len(principals) == 4

    def submit(job: tuple[str, int]) -> tuple[str, StudyPublic]:
        principal, n = job
        with live_service.client(principal) as client:
            spec = noop_spec(f"{principal}-{n}", trials=1, iterations=3, sleep_s=0.0)
            return principal, client.submit(spec)

    jobs = [(principal, n) for principal in principals for n in range(STUDIES_EACH)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:  # all 20 requests at once
        submitted = list(pool.map(submit, jobs))
    submit_s = time.monotonic() - started
    assert len({study.id for _, study in submitted}) == len(jobs)

    finished = {}
    for principal, study in submitted:
        with live_service.client(principal) as client:
            finished[study.id] = wait_for_status(client, study.id, TERMINAL, timeout_s=600)
    total_s = time.monotonic() - started
    print(f"20 studies: submitted in {submit_s:.1f} s, all finished after {total_s:.1f} s")
    assert {study.status for study in finished.values()} == {"COMPLETED"}, {
        i: (s.status, s.error) for i, s in finished.items() if s.status != "COMPLETED"
    }
    assert all(study.num_results == 3 for study in finished.values())

    for principal in principals:
        own = {study.id for owner, study in submitted if owner == principal}
        with live_service.client(principal) as client:
            listed = client.studies(limit=200)
            assert {study.owner for study in listed.items} == {principal}
            assert own <= {study.id for study in listed.items}
            others = [study.id for owner, study in submitted if owner != principal]
            for study_id in others[:5]:
                response = client._http.get(f"/api/v1/studies/{study_id}")
                assert response.status_code == 404
    with live_service.client() as admin:
        every = {study.id for study in admin.studies(limit=500).items}
    assert {study.id for _, study in submitted} <= every
