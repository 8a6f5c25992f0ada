"""Schemathesis against the live service's own OpenAPI document, over real HTTP.

Every operation of the document gets requests generated from its schema (valid ones and,
where the schema allows, invalid ones), with the admin's token; those that name a study
are also sent for a real, finished study, so they reach past "404". Whatever is sent:

- no answer is a 5xx, and none is left unanswered (no hang, no dropped connection);
- every 4xx is JSON with a ``detail``.

At least ``MIN_REQUESTS`` requests are sent (counted, so the test fails if generation
stops short). Study creation is limited per principal (the admin's bucket is shared with
the session's other tests), so it gets only a few dozen requests; a study a generated
spec might create is stopped and deleted at the end. ``HPO_FUZZ_SEED`` replays a run.

The session's live service keeps its studies in SQLite; the same run against a service
on PostgreSQL catches what only PostgreSQL refuses (NUL characters in text).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err, Ok

from service.client import HpoClient
from service.store import StudyStatus
from tests.faults.conftest import PgService
from tests.fixtures.service import LiveService, wait_for_status
from trainables import list_trainables

pytestmark = pytest.mark.ray

MIN_REQUESTS = 1000
# Examples per operation and generation mode; a study's routes also run with a real id.
EXAMPLES = {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 45}
WITH_REAL_STUDY = 45
# Study creation: the admin may create 60 at once (then 2 a second), and the session's
# other tests create studies as the admin too.
CREATE_EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 20}
CREATE = ("POST", "/api/v1/studies")
TRAINABLES = sorted(trainable.name for trainable in list_trainables())
TERMINAL = {status.value for status in StudyStatus if status.is_terminal}
BODY_LIMIT = 64 * 1024  # what is read of an answer to check it
TIMEOUT = (5.0, 30.0)

SEED_SPEC = {
    "name": "schemathesis-seed",
    "trainable": "noop",
    "metric": "loss",
    "mode": "min",
    "search_space": {"x": {"type": "grid", "values": [0.0, 1.0]}},
    "algorithm": "grid",
    "config": {"iterations": 2, "sleep_s": 0.01},
}


@dataclass
class Tally:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    by_operation: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def fail(self, case: Any, what: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(f"{case.method} {case.formatted_path}: {what}\n  {case!r}")


def check_answer(tally: Tally, case: Any, response: requests.Response) -> None:
    status = response.status_code
    tally.by_status[status] = tally.by_status.get(status, 0) + 1
    if status >= 500:
        tally.fail(case, f"{status}: {response.raw.read(500, decode_content=True)!r}")
        return
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return  # a live stream: its status and type are the answer
    body = response.raw.read(BODY_LIMIT, decode_content=True)
    if 400 <= status < 500:
        try:
            document = json.loads(body)
        except ValueError:
            tally.fail(case, f"{status} is not JSON: {body[:300]!r}")
            return
        if not isinstance(document, dict) or "detail" not in document:
            tally.fail(case, f"{status} has no detail: {body[:300]!r}")


def fuzz(
    tally: Tally,
    operation: Any,
    mode: GenerationMode,
    examples: int,
    send: Callable[[Any], None],
    run_seed: int,
    **fixed: Any,
) -> None:
    strategy = operation.as_strategy(generation_mode=mode, **fixed)

    @seed(run_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        send(case)

    # Unsatisfiable: nothing invalid can be said to this operation (it takes no input).
    with contextlib.suppress(Unsatisfiable):
        run()


def existing_ids(client: HpoClient) -> set[int]:
    return {study.id for study in client.studies(limit=1000).items}


def test_generated_requests_get_no_5xx_and_4xx_with_detail(live_service: LiveService) -> None:
    fuzz_service(live_service)


@pytest.mark.postgres
def test_the_same_on_postgresql(pg_service: PgService) -> None:
    """PostgreSQL refuses what SQLite takes (NUL characters, integers over 64 bits)."""
    fuzz_service(pg_service.live)


def fuzz_service(live_service: LiveService) -> None:
    run_seed = int(os.environ.get("HPO_FUZZ_SEED") or random.randrange(2**32))
    started = time.monotonic()
    with live_service.client() as client:
        before = existing_ids(client)
        real = client.submit(SEED_SPEC)
        wait_for_status(client, real.id, TERMINAL, timeout_s=180)

    schema = schemathesis.openapi.from_url(
        f"{live_service.base_url}/openapi.json", headers=live_service.headers(), timeout=30
    )
    results = list(schema.get_all_operations())
    broken = [result.err() for result in results if isinstance(result, Err)]
    assert not broken, f"the OpenAPI document has operations Schemathesis cannot read: {broken}"
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    # Deleting comes last, so the real study is there for everything else.
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))
    [create] = [op for op in operations if (op.method.upper(), op.path) == CREATE]
    tally = Tally()
    session = requests.Session()

    deepen = random.Random(run_seed)

    def send(case: Any) -> None:
        if case.operation is create and isinstance(case.body, dict) and deepen.random() < 0.5:
            # Past "unknown trainable", through every check of the spec, but never launched:
            # no trainable reports this metric.
            case.body["trainable"] = deepen.choice(TRAINABLES)
            case.body["metric"] = "__never_reported__"
        kwargs = case.as_transport_kwargs(
            base_url=live_service.base_url, headers=live_service.headers()
        )
        try:
            response = session.request(**kwargs, stream=True, timeout=TIMEOUT)
        except requests.RequestException as error:
            tally.fail(case, f"no answer: {error!r}")
            return
        try:
            tally.requests += 1
            name = f"{case.method} {case.path}"
            tally.by_operation[name] = tally.by_operation.get(name, 0) + 1
            check_answer(tally, case, response)
        finally:
            response.close()

    try:
        for operation in operations:
            budget = CREATE_EXAMPLES if operation is create else EXAMPLES
            for mode, examples in budget.items():
                fuzz(tally, operation, mode, examples, send, run_seed)
            if "{study_id}" in operation.path:
                fuzz(
                    tally,
                    operation,
                    GenerationMode.POSITIVE,
                    WITH_REAL_STUDY,
                    send,
                    run_seed,
                    path_parameters={"study_id": real.id},
                )
    finally:
        session.close()
        with live_service.client() as client:
            for study_id in existing_ids(client) - before:
                cleanup(client, study_id)

    took = time.monotonic() - started
    summary = (
        f"seed {run_seed}: {tally.requests} requests in {took:.0f} s over "
        f"{len(operations)} operations; statuses {dict(sorted(tally.by_status.items()))}; "
        f"per operation {tally.by_operation}"
    )
    print(summary)
    assert not tally.failures, summary + "\n" + "\n".join(tally.failures)
    assert tally.requests >= MIN_REQUESTS, summary


def cleanup(client: HpoClient, study_id: int) -> None:
    """Stop (if it runs) and delete a study the test made."""
    study = client.study(study_id)
    if study.status not in TERMINAL:
        client.stop(study_id)
        wait_for_status(client, study_id, TERMINAL, timeout_s=120)
    client.delete(study_id)
