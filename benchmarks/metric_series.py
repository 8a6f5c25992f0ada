"""The learning curves' read (``StudyStore.metric_series``) on PostgreSQL: the metric picked
out of each result's JSON in SQL (what the store does) against every whole document decoded
in Python (what it did before, and still does on SQLite, whose JSON_EXTRACT rounds floats).

A throwaway PostgreSQL server (the tests' helper), one study of 200 trials x 10 results
(the 2,000 points of the ``/snapshot`` page's 200 curves), for documents of 2 and of 25
metrics (a ``transformer_lm`` result has about 25). The two queries alternate,
``--repeats`` times each, and must return what the store's own read returns. Prints a
markdown table and writes JSON to benchmarks/results/metric_series.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.store import (  # noqa: E402
    ResultWrite,
    StudyStatus,
    StudyStore,
    TrialState,
    TrialUpdate,
    open_store,
)
from service.store.sql import RESULTS, TRIALS  # noqa: E402
from tests.fixtures.postgres import running_postgres  # noqa: E402

SPEC = {"name": "s", "trainable": "noop"}
TRIALS_N, RESULTS_EACH = 200, 10


def fill(store: StudyStore, metrics_per_result: int) -> int:
    study = store.create_study(name="s", spec=SPEC, metric="val_loss", mode="min")
    store.transition_study(study.id, StudyStatus.RUNNING)
    ids = [f"t{i}" for i in range(TRIALS_N)]
    store.upsert_trials(study.id, [TrialUpdate(t, TrialState.RUNNING, config={}) for t in ids])
    for trial_id in ids:
        results = []
        for iteration in range(1, RESULTS_EACH + 1):
            metrics = {f"m{k}": random.random() for k in range(metrics_per_result - 1)}
            results.append(
                ResultWrite(trial_id, iteration, metrics | {"val_loss": random.random()})
            )
        store.add_results(study.id, results)
    return study.id


def read(store: StudyStore, study_id: int, *, in_sql: bool) -> list[tuple[Any, ...]]:
    """The curves' query, with the metric picked in SQL (as the store does on PostgreSQL)
    or every result's document decoded and the metric picked in Python (as it did before).
    Both on a plain connection: only the query differs."""
    value = RESULTS.c.metrics["val_loss"] if in_sql else RESULTS.c.metrics
    query = (
        select(TRIALS.c.trial_id, RESULTS.c.iteration, value)
        .select_from(RESULTS)
        .join(TRIALS, TRIALS.c.id == RESULTS.c.trial_pk)
        .where(RESULTS.c.study_id == study_id)
        .order_by(RESULTS.c.trial_pk, RESULTS.c.iteration)
    )
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    if in_sql:
        return [(r[0], r[1], r[2]) for r in rows]
    return [(r[0], r[1], (r[2] or {}).get("val_loss")) for r in rows]


def time_into(fn: Callable[[], Any], times: list[float]) -> None:
    started = time.perf_counter()
    fn()
    times.append(1000 * (time.perf_counter() - started))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/metric_series.json"))
    args = parser.parse_args()
    rows = []
    with running_postgres() as server:
        for width in (2, 25):
            database = f"metric_series_{width}"
            server.execute(f"CREATE DATABASE {database}")
            store = open_store(server.url(database))
            try:
                study_id = fill(store, width)
                points = [tuple(point) for point in store.metric_series(study_id)]
                for in_sql in (False, True):
                    assert read(store, study_id, in_sql=in_sql) == points, "the reads disagree"
                times: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(args.repeats):
                    for in_sql in (False, True):
                        time_into(partial(read, store, study_id, in_sql=in_sql), times[in_sql])
            finally:
                store.close()
            rows.append(
                {
                    "metrics_per_result": width,
                    "points": len(points),
                    "whole_documents_ms": round(statistics.median(times[False]), 1),
                    "picked_in_sql_ms": round(statistics.median(times[True]), 1),
                }
            )
    report = {
        "benchmark": "metric_series",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()}, Python {platform.python_version()}",
        "repeats": args.repeats,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    print("\n| metrics per result | points | whole documents (ms, median) | picked in SQL (ms) |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['metrics_per_result']} | {row['points']} | {row['whole_documents_ms']} "
            f"| {row['picked_in_sql_ms']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
