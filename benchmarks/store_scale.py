"""Store at scale: write cost per trial up to 100,000 trials x 10 results, Optuna's RDB
storage beside it, and the read endpoints' latency over HTTP at that size.

(1) Writes. One study grows to ``--trials`` trials through the store's own calls
(``write_batch``) in the runner's batch shapes: the item stream a Tune run with
``--concurrency`` trials at a time produces (per trial: PENDING with its config, RUNNING,
10 results, TERMINATED), cut into batches of up to 500 items, each written in one
``write_batch`` call, as ``service/runner/writer.py``'s BatchingStoreWriter does. No
Ray. Only the store calls are timed. Reported: ms per trial over 0-1k, 1k-10k and 10k-100k
trials (target: flat within +-20 % of 0-1k), and the batch-call latency. On SQLite (a file) and on a
throwaway PostgreSQL server (tests/fixtures/postgres.py's ``running_postgres``).
(2) Optuna's RDB storage on SQLite (its default setup, ``sqlite:///file``), same machine,
same run: ``study.ask()``/``study.tell()`` with 2 float parameters and 1 value per trial,
RandomSampler; ms per trial over trials 0-1k and 9k-10k. Our store's cost per trial at the
same sizes is reported beside it twice: batched as above, and unbatched (one call per
update run of one trial, as the writer does when trials report slowly).
(3) Reads. The real app (uvicorn in a thread, HTTP, an API token, a Ray address that is
never contacted, ``validate_capacity`` off) on the 100k-trial database: p50/p99 of
``GET /studies/{id}`` (from the service's study cache, and with ``Cache-Control:
no-cache``: read from the store every time), ``/trials?limit=100`` (number and best
order), the best trial (``/trials?order=best&limit=1``: there is no route of its own;
``GET /studies/{id}`` carries it too), one trial's results, the last page of trials (by
``offset`` and by keyset ``after``), and the page's ``/snapshot`` (cached, and built on
every request with ``no-cache``). Target: p99 <= 100 ms.

Prints markdown tables and writes JSON to benchmarks/results/store_scale.json.
``--quick``: 3,000 trials, Optuna to 200, short read loops, one cold /snapshot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from service.store import (  # noqa: E402
    ResultWrite,
    StudyStatus,
    StudyStore,
    TrialState,
    TrialUpdate,
    open_store,
)

RESULTS_PER_TRIAL = 10
MAX_BATCH = 500  # BatchingStoreWriter's default max_batch
BLOCK = 1000  # trials per timed block; the ranges are made of blocks
RANGES = ((0, 1_000), (1_000, 10_000), (10_000, 100_000))
NEVER_CONTACTED_RAY = "http://127.0.0.1:9"  # discard port: reads never reach it
READ_TARGET_P99_MS = 100.0
FLAT_TOLERANCE = 0.20

SPEC = {
    "name": "store-scale",
    "trainable": "branin",
    "metric": "loss",
    "mode": "min",
    "search_space": {
        "x1": {"type": "uniform", "low": -5, "high": 10},
        "x2": {"type": "uniform", "low": 0, "high": 15},
    },
    "algorithm": {"name": "random", "seed": 0},
    "num_samples": 100_000,
    "max_concurrent_trials": 50,
}


# --- the runner's item stream ----------------------------------------------------------------
def trial_items(first: int, count: int, concurrency: int, rng: random.Random) -> list[Any]:
    """The updates the Tune callback hands to the writer for trials ``first`` ..
    ``first + count - 1``, ``concurrency`` at a time: each wave's trials appear (PENDING
    with their config), start (RUNNING), report 10 results in rounds, and end."""
    items: list[Any] = []
    for wave in range(first, first + count, concurrency):
        ids = [f"t{k:06d}" for k in range(wave, min(first + count, wave + concurrency))]
        configs = {t: {"x1": rng.uniform(-5, 10), "x2": rng.uniform(0, 15)} for t in ids}
        items += [TrialUpdate(t, TrialState.PENDING, config=configs[t]) for t in ids]
        items += [TrialUpdate(t, TrialState.RUNNING) for t in ids]
        for i in range(1, RESULTS_PER_TRIAL + 1):
            for t in ids:
                c = configs[t]
                loss = (c["x1"] - 2) ** 2 + (c["x2"] - 5) ** 2 / 4 + 10 / i + rng.gauss(0, 0.1)
                items.append(ResultWrite(t, i, {"loss": loss, "time_total_s": 0.1 * i}))
        items += [TrialUpdate(t, TrialState.TERMINATED) for t in ids]
    return items


def batches(items: Sequence[Any], size: int = MAX_BATCH) -> Iterator[list[Any]]:
    """Batches of up to ``size`` items (one store call a batch, as the writer makes)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def unbatched(items: Sequence[Any]) -> Iterator[list[Any]]:
    """One trial at a time (the writer at a low rate: each flush holds one trial's
    creation, its results, its end)."""
    by_trial: dict[str, list[Any]] = {}
    for item in items:
        by_trial.setdefault(item.trial_id, []).append(item)
    yield from by_trial.values()


def timed_write(store: StudyStore, study_id: int, calls: Iterator[list[Any]]) -> list[float]:
    """Every store call's duration (s)."""
    durations = []
    for batch in calls:
        started = time.perf_counter()
        store.write_batch(study_id, batch)
        durations.append(time.perf_counter() - started)
    return durations


def new_study(store: StudyStore, name: str) -> int:
    record = store.create_study(name=name, spec={**SPEC, "name": name}, metric="loss", mode="min")
    store.transition_study(record.id, StudyStatus.RUNNING)
    return record.id


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


# --- (1) writes at scale -----------------------------------------------------------------------
def grow(store: StudyStore, trials: int, concurrency: int, label: str) -> dict[str, Any]:
    """Grow one study to ``trials`` trials in batches; the time of each 1,000-trial block."""
    study_id = new_study(store, f"scale-{label}")
    rng = random.Random(0)
    blocks: list[dict[str, Any]] = []
    started = time.perf_counter()
    for first in range(0, trials, BLOCK):
        calls = timed_write(store, study_id, batches(trial_items(first, BLOCK, concurrency, rng)))
        blocks.append(
            {
                "first": first,
                "store_s": sum(calls),
                "calls": len(calls),
                "call_p50_ms": 1000 * pct(calls, 0.5),
                "call_p99_ms": 1000 * pct(calls, 0.99),
                "call_max_ms": 1000 * max(calls),
            }
        )
        if (first + BLOCK) % 10_000 == 0:
            done = first + BLOCK
            print(
                f"  {label}: {done} trials, {1000 * blocks[-1]['store_s'] / BLOCK:.3f} ms/trial "
                f"in the last block, {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    store.transition_study(study_id, StudyStatus.COMPLETED)
    ranges = []
    for low, high in RANGES:
        part = [b for b in blocks if low <= b["first"] < high]
        if not part:
            continue
        ms = 1000 * sum(b["store_s"] for b in part) / (len(part) * BLOCK)
        ranges.append(
            {
                "range": f"{low // 1000}k-{high // 1000}k",
                "trials": len(part) * BLOCK,
                "ms_per_trial": round(ms, 4),
                "call_p50_ms": round(statistics.median(b["call_p50_ms"] for b in part), 3),
                "call_p99_ms": round(max(b["call_p99_ms"] for b in part), 3),
                "call_max_ms": round(max(b["call_max_ms"] for b in part), 3),
            }
        )
    base = ranges[0]["ms_per_trial"]
    for r in ranges:
        r["vs_0_1k"] = round(r["ms_per_trial"] / base, 3)
    return {
        "database": label,
        "study_id": study_id,
        "trials": trials,
        "results": trials * RESULTS_PER_TRIAL,
        "concurrency": concurrency,
        "wall_s": round(time.perf_counter() - started, 1),
        "store_s": round(sum(b["store_s"] for b in blocks), 2),
        "ranges": ranges,
        "flat": all(abs(r["vs_0_1k"] - 1) <= FLAT_TOLERANCE for r in ranges),
        "blocks_ms_per_trial": [round(1000 * b["store_s"] / BLOCK, 4) for b in blocks],
        "at_1k_ms": round(1000 * blocks[0]["store_s"] / BLOCK, 4),
        "at_10k_ms": round(1000 * blocks[9]["store_s"] / BLOCK, 4) if len(blocks) >= 10 else None,
    }


def unbatched_cost(store: StudyStore, concurrency: int, upto: int) -> dict[str, Any]:
    """Our store one trial per call: ms/trial over trials 0-1k and (grown in batches in
    between) over the 1,000 trials before ``upto``."""
    study_id = new_study(store, "unbatched")
    rng = random.Random(1)
    out: dict[str, Any] = {}
    first = min(BLOCK, upto)
    first_block = timed_write(store, study_id, unbatched(trial_items(0, first, concurrency, rng)))
    out["at_1k_ms"] = round(1000 * sum(first_block) / first, 4)
    if upto > BLOCK:
        timed_write(
            store, study_id, batches(trial_items(BLOCK, upto - 2 * BLOCK, concurrency, rng))
        )
        last = timed_write(
            store, study_id, unbatched(trial_items(upto - BLOCK, BLOCK, concurrency, rng))
        )
        out[f"at_{upto // 1000}k_ms"] = round(1000 * sum(last) / BLOCK, 4)
    store.transition_study(study_id, StudyStatus.COMPLETED)
    return out


# --- (2) Optuna ----------------------------------------------------------------------------------
def optuna_cost(path: Path, trials: int, *, our_pragmas: bool = False) -> dict[str, Any]:
    """Optuna's RDB storage on a SQLite file: ask/tell, 2 parameters, 1 value. As it comes
    (rollback journal, synchronous=FULL: an fsync per commit), or with ``our_pragmas``:
    the store's SQLite settings (WAL, synchronous=NORMAL), to compare like with like."""
    import optuna
    from optuna.distributions import BaseDistribution, FloatDistribution
    from sqlalchemy import event

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    if our_pragmas:

        def pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        event.listen(storage.engine, "connect", pragmas)
        storage.engine.dispose()  # connections made from now on get the pragmas
    study = optuna.create_study(
        study_name="bench",
        storage=storage,
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    space: dict[str, BaseDistribution] = {
        "x1": FloatDistribution(-5, 10),
        "x2": FloatDistribution(0, 15),
    }
    per_block: list[float] = []  # ms per trial of each block of up to 1,000 trials
    started = time.perf_counter()
    block_start, block_first = started, 0
    for n in range(1, trials + 1):
        trial = study.ask(space)
        x1, x2 = trial.params["x1"], trial.params["x2"]
        study.tell(trial, (x1 - 2) ** 2 + (x2 - 5) ** 2 / 4)
        if n % BLOCK == 0 or n == trials:
            now = time.perf_counter()
            per_block.append(1000 * (now - block_start) / (n - block_first))
            block_start, block_first = now, n
    out: dict[str, Any] = {
        "optuna": optuna.__version__,
        "storage": "RDBStorage sqlite:///file, "
        + ("WAL + synchronous=NORMAL (the store's)" if our_pragmas else "Optuna's defaults"),
        "sampler": "RandomSampler",
        "trials": trials,
        "wall_s": round(time.perf_counter() - started, 1),
        "blocks_ms_per_trial": [round(ms, 4) for ms in per_block],
        "at_1k_ms": round(per_block[0], 4),
    }
    if len(per_block) >= 10:
        out["at_10k_ms"] = round(per_block[9], 4)
    return out


# --- (3) reads over HTTP ----------------------------------------------------------------------
@contextlib.contextmanager
def serving(database_url: str, home: Path) -> Iterator[tuple[str, str]]:
    """The real app on ``database_url`` (uvicorn in a thread): (base URL, token)."""
    import uvicorn
    from pydantic import SecretStr

    from service.api.app import create_app
    from service.ray_local import free_port
    from service.settings import Settings

    token = secrets.token_urlsafe(32)
    port = free_port()
    settings = Settings(
        home=home,
        database_url=database_url,
        ray_address=NEVER_CONTACTED_RAY,
        validate_capacity=False,
        host="127.0.0.1",
        port=port,
        api_tokens=SecretStr(f"{token}=bench:admin"),
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="hpo-bench-service", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.1)
    try:
        yield url, token
    finally:
        server.should_exit = True
        thread.join(30)


def read_latency(
    database_url: str, study_id: int, trials: int, home: Path, loops: int, snapshots: int
) -> list[dict[str, Any]]:
    api = f"/api/v1/studies/{study_id}"
    middle = f"t{trials // 2:06d}"
    fresh = {"Cache-Control": "no-cache"}
    endpoints: list[tuple[str, str, int, dict[str, str]]] = [
        ("GET /studies/{id}", api, loops, {}),
        ("GET /studies/{id}, no-cache (store read)", api, loops, fresh),
        ("GET /studies/{id}/trials?limit=100", f"{api}/trials?limit=100", loops, {}),
        (
            "GET /studies/{id}/trials?limit=100&order=best",
            f"{api}/trials?limit=100&order=best",
            loops,
            {},
        ),
        ("best trial: /trials?order=best&limit=1", f"{api}/trials?order=best&limit=1", loops, {}),
        ("GET /studies/{id}/trials/{trial}/results", f"{api}/trials/{middle}/results", loops, {}),
        (
            "last page: /trials?limit=100&offset=N-100",
            f"{api}/trials?limit=100&offset={trials - 100}",
            loops,
            {},
        ),
        (
            "last page, keyset: /trials?limit=100&after=N-101",
            f"{api}/trials?limit=100&after={trials - 101}",
            loops,
            {},
        ),
        ("page data: GET /studies/{id}/snapshot", f"{api}/snapshot", snapshots, {}),
        (
            "page data, no-cache (built each time): /snapshot",
            f"{api}/snapshot",
            snapshots,
            fresh,
        ),
    ]
    rows = []
    with serving(database_url, home) as (url, token):
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
            for name, path, n, extra in endpoints:
                for _ in range(2 if n > 5 else min(n - 1, 1)):  # warm up (/snapshot: once)
                    client.get(path, headers=extra).raise_for_status()
                times, size = [], 0
                for _ in range(n):
                    started = time.perf_counter()
                    response = client.get(path, headers=extra)
                    times.append(1000 * (time.perf_counter() - started))
                    response.raise_for_status()
                    size = len(response.content)
                rows.append(latency_row(name, times, size))
            rows.append(snapshot_while_written(client, database_url, study_id, api, snapshots))
    return rows


def latency_row(name: str, times_ms: Sequence[float], size: int, **extra: Any) -> dict[str, Any]:
    """One read's row of the report (and its line on the console)."""
    p99 = pct(times_ms, 0.99)
    row = {
        "endpoint": name,
        "requests": len(times_ms),
        "p50_ms": round(pct(times_ms, 0.5), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(max(times_ms), 2),
        "bytes": size,
        **extra,
        "meets_target": p99 <= READ_TARGET_P99_MS,
    }
    print(f"  {name}: p50 {row['p50_ms']} ms, p99 {p99:.1f} ms", flush=True)
    return row


def snapshot_while_written(
    client: httpx.Client, database_url: str, study_id: int, api: str, n: int
) -> dict[str, Any]:
    """``/snapshot`` as the page of a running study gets it: the runner writes a result
    before each request, and the service's study cache has seen the study move on. The
    snapshot may then be served behind (at most ``SNAPSHOT_BEHIND_S``) while a new one is
    built; how far behind is counted in events."""
    from service.api.study_cache import POLL_S

    store = open_store(database_url)
    live = "live"
    try:
        store.upsert_trials(
            study_id, [TrialUpdate(live, TrialState.RUNNING, config={"x1": 0.0, "x2": 0.0})]
        )
        times, behind, size = [], [], 0
        for i in range(1, n + 2):
            store.add_results(study_id, [ResultWrite(live, i, {"loss": 100.0 + i})])
            time.sleep(POLL_S + 0.05)  # the service's cache check has run since the write
            started = time.perf_counter()
            response = client.get(f"{api}/snapshot")
            elapsed = 1000 * (time.perf_counter() - started)
            response.raise_for_status()
            if i == 1:
                continue  # warm-up: the first one after the service started is built
            times.append(elapsed)
            size = len(response.content)
            behind.append(store.last_event_id(study_id) - response.json()["last_event_id"])
    finally:
        store.upsert_trials(study_id, [TrialUpdate(live, TrialState.TERMINATED)])
        store.close()
    return latency_row(
        "page data while the study is written (a result before each request)",
        times,
        size,
        events_behind_max=max(behind),
    )


BREAKDOWN_REPEATS = 9  # each step's time is the median of this many calls


def snapshot_breakdown(database_url: str, study_id: int) -> dict[str, float]:
    """Where ``/snapshot``'s server time goes when it is built (a cache miss): its steps
    (service/api/snapshot.py) timed one by one in this process, in seconds (the median of
    ``BREAKDOWN_REPEATS`` calls each: one call is at the mercy of the machine's load)."""
    from service.api import snapshot as snap
    from service.api.documents import study_public_and_revision

    store = open_store(database_url)
    steps: dict[str, float] = {}
    try:

        def timed(name: str, fn: Any) -> Any:
            times = []
            for _ in range(BREAKDOWN_REPEATS):
                started = time.perf_counter()
                value = fn()
                times.append(time.perf_counter() - started)
            steps[name] = round(statistics.median(times), 4)
            return value

        timed("last_event_id", lambda: store.last_event_id(study_id))
        public, _ = timed(
            "study document (summarize_study)", lambda: study_public_and_revision(store, study_id)
        )
        sample = timed(
            f"sample of {snap.SAMPLE_TRIALS} trials (trials_by_numbers)",
            lambda: store.trials_by_numbers(
                study_id, snap.spread(public.num_trials, snap.SAMPLE_TRIALS)
            ),
        )
        curves = timed(
            "choose the curves (best, running: index reads; the rest from the sample)",
            lambda: snap.sampled_curves(store, study_id, sample),
        )
        series = timed(
            "metric_series of the chosen trials",
            lambda: store.metric_series(study_id, [t.trial_id for t in curves]),
        )
        timed("best_steps (kept on the study row)", lambda: store.best_steps(study_id))
        doc, _ = timed("snapshot build, whole", lambda: snap.build(store, study_id))
        body = timed("json.dumps of the document", lambda: json.dumps(doc, separators=(",", ":")))
        steps["trials_sent"] = len(doc["trials"])
        steps["sample"] = len(sample)
        steps["curves"] = len(doc["curves"])
        steps["results_sent"] = len(series)
        steps["bytes"] = len(body)
    finally:
        store.close()
    return steps


# --- main ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def postgres_url() -> Iterator[str | None]:
    """A database on a throwaway PostgreSQL server (the tests' helper), or None."""
    try:
        from tests.fixtures.postgres import find_pg_bin, running_postgres
    except ImportError as error:  # pytest missing: the helper needs it
        print(f"PostgreSQL skipped: {error}", flush=True)
        yield None
        return
    if find_pg_bin() is None:
        print("PostgreSQL skipped: no initdb/pg_ctl (apt-get install -y postgresql)", flush=True)
        yield None
        return
    with running_postgres() as server:
        server.execute("CREATE DATABASE hpo_bench")
        yield server.url("hpo_bench")


def print_tables(report: dict[str, Any]) -> None:
    print("\n| database | trials | range | ms/trial | / 0-1k | batch call p50 / p99 / max (ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run in report["writes"]:
        for r in run["ranges"]:
            print(
                f"| {run['database']} | {run['trials']} | {r['range']} | {r['ms_per_trial']:.3f} "
                f"| {r['vs_0_1k']:.2f} | {r['call_p50_ms']:.1f} / {r['call_p99_ms']:.1f} / "
                f"{r['call_max_ms']:.1f} |"
            )
    if report.get("optuna"):
        comp = report["comparison"]
        print("\n| ms per trial (SQLite) | at 0-1k | at 9k-10k |")
        print("| --- | --- | --- |")
        for name, key in (
            ("Optuna RDBStorage as it comes, ask/tell (2 params, 1 value)", "optuna"),
            ("Optuna RDBStorage, WAL + synchronous=NORMAL", "optuna_our_pragmas"),
            ("hpo store, batched (3 updates + 10 results)", "ours_batched"),
            ("hpo store, one trial per call", "ours_unbatched"),
        ):
            row = comp[key]
            print(f"| {name} | {row.get('at_1k_ms')} | {row.get('at_10k_ms', '-')} |")
        for key, ratio in comp["ratios"].items():
            print(f"{key}: {ratio}")
    for db, steps in report.get("snapshot_breakdown_s", {}).items():
        print(f"\n/snapshot's steps, {db}: " + ", ".join(f"{k}: {v}" for k, v in steps.items()))
    for db, rows in report["reads"].items():
        print(
            f"\n| reads, {db}, {report['read_trials']} trials | n | p50 (ms) | p99 (ms) | bytes |"
        )
        print("| --- | --- | --- | --- | --- |")
        for r in rows:
            print(
                f"| {r['endpoint']} | {r['requests']} | {r['p50_ms']} | {r['p99_ms']} "
                f"| {r['bytes']} |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50, help="trials running at once")
    parser.add_argument("--optuna-trials", type=int, default=10_000)
    parser.add_argument("--loops", type=int, default=200, help="requests per read endpoint")
    parser.add_argument("--snapshots", type=int, default=20, help="requests of /snapshot")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-optuna", action="store_true")
    parser.add_argument("--quick", action="store_true", help="3k trials, short loops")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="an empty directory to keep the SQLite files in (default: a temporary one)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "store_scale.json"
    )
    args = parser.parse_args()
    if args.quick:
        args.trials, args.optuna_trials, args.loops, args.snapshots = 3_000, 200, 20, 5
    args.trials = max(BLOCK, args.trials // BLOCK * BLOCK)
    logging.getLogger("service").setLevel(logging.WARNING)

    report: dict[str, Any] = {
        "benchmark": "store_scale",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_version()}",
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        "trials": args.trials,
        "results_per_trial": RESULTS_PER_TRIAL,
        "concurrency": args.concurrency,
        "writes": [],
        "reads": {},
        "read_trials": args.trials,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every phase: a late failure keeps what was measured
        args.out.write_text(json.dumps(report, indent=2))

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.nullcontext(str(args.workdir))
        if args.workdir
        else tempfile.TemporaryDirectory(prefix="hpo-store-scale-")
    ) as tmp:
        root = Path(tmp)
        urls = {"SQLite": f"sqlite:///{root / 'hpo.db'}"}
        with contextlib.ExitStack() as stack:
            if not args.skip_postgres:
                pg = stack.enter_context(postgres_url())
                if pg:
                    urls["PostgreSQL"] = pg
            studies = {}
            for label, url in urls.items():
                print(f"writing {args.trials} trials to {label}", flush=True)
                store = open_store(url)
                try:
                    run = grow(store, args.trials, args.concurrency, label)
                finally:
                    store.close()
                if label == "SQLite" and not args.skip_optuna:
                    print("one trial per call, SQLite (a new file)", flush=True)
                    store = open_store(f"sqlite:///{root / 'unbatched.db'}")
                    try:
                        run["unbatched"] = unbatched_cost(
                            store, args.concurrency, min(10_000, args.optuna_trials)
                        )
                    finally:
                        store.close()
                report["writes"].append(run)
                save()
                studies[label] = run["study_id"]
                print(json.dumps({k: v for k, v in run.items() if k != "blocks_ms_per_trial"}))
            if not args.skip_optuna:
                try:
                    import optuna  # noqa: F401
                except ImportError:
                    print("Optuna skipped: pip install -e '.[bench]'", flush=True)
                else:
                    print(f"Optuna: {args.optuna_trials} trials", flush=True)
                    report["optuna"] = optuna_cost(root / "optuna.db", args.optuna_trials)
                    print(json.dumps(report["optuna"]), flush=True)
                    save()
                    if not args.quick:
                        print("Optuna with the store's SQLite pragmas", flush=True)
                        report["optuna_our_pragmas"] = optuna_cost(
                            root / "optuna-wal.db", min(BLOCK, args.optuna_trials), our_pragmas=True
                        )
                        print(json.dumps(report["optuna_our_pragmas"]), flush=True)
                        save()
            for label, url in urls.items():
                print(f"reads over HTTP, {label}", flush=True)
                (root / f"home-{label}").mkdir(exist_ok=True)
                report["reads"][label] = read_latency(
                    url,
                    studies[label],
                    args.trials,
                    root / f"home-{label}",
                    args.loops,
                    args.snapshots,
                )
                save()
                if args.trials > 1000:  # where a built (uncached) /snapshot spends its time
                    print(f"snapshot's steps, {label}", flush=True)
                    report.setdefault("snapshot_breakdown_s", {})[label] = snapshot_breakdown(
                        url, studies[label]
                    )
                    print(json.dumps(report["snapshot_breakdown_s"][label]), flush=True)
                    save()
    report["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    sqlite_run = report["writes"][0]
    if report.get("optuna"):
        opt = report["optuna"]
        ours = {"at_1k_ms": sqlite_run["at_1k_ms"], "at_10k_ms": sqlite_run["at_10k_ms"]}
        mine = sqlite_run.get("unbatched", {})
        comparison: dict[str, Any] = {
            "optuna": {k: opt.get(k) for k in ("at_1k_ms", "at_10k_ms")},
            "optuna_our_pragmas": {
                "at_1k_ms": report.get("optuna_our_pragmas", {}).get("at_1k_ms")
            },
            "ours_batched": ours,
            "ours_unbatched": mine,
            "ratios": {},
        }
        for at in ("at_1k_ms", "at_10k_ms"):
            if opt.get(at) and ours.get(at):
                comparison["ratios"][f"ours batched / Optuna, {at[3:-3]}"] = round(
                    ours[at] / opt[at], 3
                )
            if opt.get(at) and mine.get(at):
                comparison["ratios"][f"ours unbatched / Optuna, {at[3:-3]}"] = round(
                    mine[at] / opt[at], 3
                )
        wal = comparison["optuna_our_pragmas"]["at_1k_ms"]
        if wal:
            for name, row in (("batched", ours), ("unbatched", mine)):
                if row.get("at_1k_ms"):
                    comparison["ratios"][f"ours {name} / Optuna with WAL, 1k"] = round(
                        row["at_1k_ms"] / wal, 3
                    )
        report["comparison"] = comparison
    report["targets"] = {
        "writes_flat_within_20pct": {r["database"]: r["flat"] for r in report["writes"]},
        "reads_p99_le_100ms": {
            db: all(r["meets_target"] for r in rows) for db, rows in report["reads"].items()
        },
    }
    save()
    print_tables(report)
    print(f"\ntargets: {json.dumps(report['targets'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
