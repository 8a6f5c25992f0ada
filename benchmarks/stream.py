"""Result ingestion and the live stream under load, and the study page's render time.

(1) Two noop trials report as fast as they can (``sleep_s: 0``) for ``--seconds`` through
the real path (Tune driver -> StoreCallback -> batching writer -> SQLite), once with no
SSE client and once with ``--clients`` clients following the study's event stream from
its start. Reported: results/s stored (count / span of ``stored_at``), ingest lag p50/p99
(``stored_at - reported_at``), results missing (gaps in a trial's iterations, or a client
that did not receive every stored result), and the machine's load average.
(2) A study of 10,000 trials x 20 results is written into the store and its page opened
in headless Chromium (Debian's): time to first render (header + table) and to full
render (every chart drawn), from navigation start, median of 3 loads.

Prints a markdown table and writes JSON to benchmarks/results/stream.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The service needs a bearer token: the benchmark gives it one and its clients use it.
BENCH_TOKEN = secrets.token_urlsafe(24)
os.environ["HPO_TOKEN"] = BENCH_TOKEN

import httpx  # noqa: E402
from httpx_sse import aconnect_sse  # noqa: E402

from service.client import HpoClient  # noqa: E402
from service.ray_local import LocalRayHead, free_port  # noqa: E402
from service.store import (  # noqa: E402
    ResultWrite,
    StudyStatus,
    TrialState,
    TrialUpdate,
    open_store,
)

TERMINAL = ("COMPLETED", "FAILED", "STOPPED")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def flood_spec(seconds: int) -> dict[str, Any]:
    return {
        "name": f"stream-flood-{seconds}s",
        "trainable": "noop",
        "search_space": {"x": {"type": "uniform", "low": 0, "high": 1}},
        "algorithm": {"name": "random", "seed": 0},
        "num_samples": 2,
        "max_concurrent_trials": 2,
        "config": {"iterations": 100_000_000, "sleep_s": 0.0},
        "stop": {"time_budget_s": seconds},
    }


class Clients:
    """``n`` SSE clients following one study from its start, on their own event loop.
    Client 0 parses every event with httpx-sse (ids in order, none twice); the others
    count result events in the raw bytes, as a cheap client would."""

    def __init__(self, url: str, study_id: int, n: int) -> None:
        self.url, self.study_id, self.n = url, study_id, n
        self.counts = [0] * n
        self.ordered_unique = True
        self.thread = threading.Thread(target=lambda: asyncio.run(self._all()), daemon=True)

    async def _all(self) -> None:
        limits = httpx.Limits(max_connections=self.n + 5)
        timeout = httpx.Timeout(30, read=300)
        headers = {"Authorization": f"Bearer {BENCH_TOKEN}"}
        async with httpx.AsyncClient(
            base_url=self.url, limits=limits, timeout=timeout, headers=headers
        ) as http:
            await asyncio.gather(
                self._parsing(http), *(self._raw(http, i) for i in range(1, self.n))
            )

    async def _parsing(self, http: httpx.AsyncClient) -> None:
        last = 0
        path = f"/api/v1/studies/{self.study_id}/events"
        async with aconnect_sse(http, "GET", path) as source:
            async for event in source.aiter_sse():
                if not event.data:
                    continue  # a heartbeat: httpx-sse hands it over with the last id
                if int(event.id) <= last:
                    self.ordered_unique = False
                last = int(event.id)
                if event.event == "result":
                    self.counts[0] += 1

    async def _raw(self, http: httpx.AsyncClient, i: int) -> None:
        buffer = b""
        async with http.stream("GET", f"/api/v1/studies/{self.study_id}/events") as response:
            async for chunk in response.aiter_bytes():
                lines = (buffer + chunk).split(b"\r\n")
                buffer = lines.pop()
                self.counts[i] += lines.count(b"event: result")


def run_flood(url: str, db_url: str, seconds: int, clients: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    with HpoClient(url, timeout_s=60) as client:
        study = client.submit(flood_spec(seconds))
        followers = Clients(url, study.id, clients) if clients else None
        if followers:
            followers.thread.start()
        while study.status not in TERMINAL:
            time.sleep(0.5)
            study = client.study(study.id)
    load_after = os.getloadavg()
    if followers:
        followers.thread.join(300)
    store = open_store(db_url)
    try:
        lags, stored, gaps, first, last = [], 0, 0, None, None
        for trial in store.list_trials(study.id, limit=100).items:
            results = store.get_results(study.id, trial.trial_id)
            iterations = [r.iteration for r in results]
            gaps += (iterations[-1] - len(iterations)) if iterations else 0
            stored += len(results)
            for r in results:
                lags.append((r.stored_at - r.reported_at).total_seconds())
                first = r.stored_at if first is None or r.stored_at < first else first
                last = r.stored_at if last is None or r.stored_at > last else last
    finally:
        store.close()
    span = (last - first).total_seconds() if first and last else 0.0
    lags.sort()
    report: dict[str, Any] = {
        "sse_clients": clients,
        "status": study.status,
    }
    return {
        **report,
        **flood_summary(stored, span, lags, gaps, load_before, load_after, followers),
    }


def flood_summary(
    stored: int,
    span: float,
    lags: list[float],
    gaps: int,
    load_before: Any,
    load_after: Any,
    followers: Any,
) -> dict[str, Any]:
    """Rate, lag percentiles (``lags`` sorted) and what the SSE clients received."""
    summary: dict[str, Any] = {
        "results_stored": stored,
        "span_s": round(span, 2),
        "results_per_s": round(stored / span, 1) if span else 0.0,
        "lag_p50_s": round(lags[len(lags) // 2], 4) if lags else None,
        "lag_p99_s": round(lags[int(len(lags) * 0.99)], 4) if lags else None,
        "lag_max_s": round(lags[-1], 4) if lags else None,
        "iteration_gaps": gaps,
        "load_avg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }
    if followers:
        summary["clients_complete"] = sum(1 for c in followers.counts if c == stored)
        summary["client_counts_min_max"] = [min(followers.counts), max(followers.counts)]
        summary["parsing_client_ordered_unique"] = followers.ordered_unique
    return summary


def run_store_flood(url: str, db_url: str, seconds: int, clients: int, rate: int) -> dict[str, Any]:
    """The store path alone: two threads stand in for two trials, handing ``rate``
    results/s in all to the runner's BatchingStoreWriter (as the Tune callback does),
    while ``clients`` SSE clients follow the study through the live service."""
    from service.runner.writer import BatchingStoreWriter

    store = open_store(db_url)
    record = store.create_study(name="store-flood", spec={}, metric="loss", mode="min")
    store.transition_study(record.id, StudyStatus.RUNNING)
    followers = Clients(url, record.id, clients) if clients else None
    if followers:
        followers.thread.start()
        time.sleep(1.0)
    writer = BatchingStoreWriter(store, record.id)
    load_before = os.getloadavg()
    stop_at = time.monotonic() + seconds

    def trial(name: str) -> None:
        writer.trial(TrialUpdate(name, TrialState.RUNNING, config={"x": 0.5}))
        per_tick, i = max(1, rate // 2 // 100), 0
        next_tick = time.monotonic()
        while time.monotonic() < stop_at:
            for _ in range(per_tick):
                i += 1
                writer.result(ResultWrite(name, i, {"loss": 1.0 / i}))
            next_tick += 0.01
            time.sleep(max(0.0, next_tick - time.monotonic()))
        writer.trial(TrialUpdate(name, TrialState.TERMINATED))

    producers = [threading.Thread(target=trial, args=(f"t{k}",)) for k in range(2)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    writer.close()
    store.transition_study(record.id, StudyStatus.COMPLETED)
    load_after = os.getloadavg()
    if followers:
        followers.thread.join(300)
    lags, stored, gaps, first, last = [], 0, 0, None, None
    for t in store.list_trials(record.id, limit=10).items:
        results = store.get_results(record.id, t.trial_id)
        gaps += (results[-1].iteration - len(results)) if results else 0
        stored += len(results)
        for r in results:
            lags.append((r.stored_at - r.reported_at).total_seconds())
            first = r.stored_at if first is None or r.stored_at < first else first
            last = r.stored_at if last is None or r.stored_at > last else last
    store.close()
    span = (last - first).total_seconds() if first and last else 0.0
    lags.sort()
    report: dict[str, Any] = {
        "path": "store (BatchingStoreWriter)",
        "target_rate_per_s": rate,
        "sse_clients": clients,
    }
    return {
        **report,
        **flood_summary(stored, span, lags, gaps, load_before, load_after, followers),
    }


def populate(db_url: str, trials: int, iterations: int) -> int:
    """A finished-looking study of ``trials`` x ``iterations`` results, written in batches."""
    store = open_store(db_url)
    rng = random.Random(0)
    spec = {
        "name": "page-10k",
        "trainable": "noop",
        "num_samples": trials,
        "algorithm": {"name": "random"},
        "scheduler": {"name": "asha"},
        "config": {"iterations": iterations},
        "search_space": {
            "x1": {"type": "uniform", "low": -1, "high": 1},
            "x2": {"type": "uniform", "low": -1, "high": 1},
            "lr": {"type": "loguniform", "low": 1e-5, "high": 1e-1},
            "width": {"type": "choice", "values": [16, 32, 64]},
        },
    }
    record = store.create_study(name="page-10k", spec=spec, metric="loss", mode="min")
    store.transition_study(record.id, StudyStatus.RUNNING)
    for start in range(0, trials, 500):
        created, results, finished = [], [], []
        for k in range(start, min(trials, start + 500)):
            trial_id = f"t{k:05d}"
            config = {
                "x1": rng.uniform(-1, 1),
                "x2": rng.uniform(-1, 1),
                "lr": 10 ** rng.uniform(-5, -1),
                "width": rng.choice([16, 32, 64]),
            }
            created.append(TrialUpdate(trial_id, TrialState.RUNNING, config=config))
            stop = iterations if rng.random() < 0.4 else rng.randint(2, iterations)
            for i in range(1, stop + 1):
                loss = config["x1"] ** 2 + 0.3 * config["x2"] ** 2 + 1 - i / iterations
                results.append(ResultWrite(trial_id, i, {"loss": loss + rng.gauss(0, 0.02)}))
            state = TrialState.TERMINATED if stop == iterations else TrialState.PRUNED
            finished.append(TrialUpdate(trial_id, state))
        store.upsert_trials(record.id, created)
        store.add_results(record.id, results)
        store.upsert_trials(record.id, finished)
    store.transition_study(record.id, StudyStatus.COMPLETED)
    store.close()
    return record.id


def measure_page(url: str, study_id: int, loads: int = 3) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("HPO_CHROMIUM", "/usr/bin/chromium")
    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(loads):
                page = browser.new_page(viewport={"width": 1280, "height": 1400})
                # The page signs in with the token (a cookie), as a user's first visit does.
                page.goto(f"{url}/studies/{study_id}?token={BENCH_TOKEN}")
                page.wait_for_selector("body[data-rendered=full]", timeout=120_000)
                runs.append(page.evaluate("window.hpoTimings"))
                series = page.locator("#curves").get_attribute("data-series")
                lines = page.locator("#parallel").get_attribute("data-lines")
                page.close()
        finally:
            browser.close()
    nav = [r["start"] for r in runs]  # navigation start -> script start
    return {
        "loads": loads,
        "first_render_ms": round(statistics.median(r["start"] + r["firstRender"] for r in runs)),
        "full_render_ms": round(statistics.median(r["start"] + r["fullRender"] for r in runs)),
        "snapshot_loaded_ms": round(
            statistics.median(r["start"] + r["snapshotLoaded"] for r in runs)
        ),
        "script_start_ms": round(statistics.median(nav)),
        "curves_drawn": int(series or 0),
        "parallel_lines": int(lines or 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--page-trials", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=2000, help="store-path flood, results/s")
    parser.add_argument("--skip-tune", action="store_true", help="only the store-path floods")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="5 s floods with SSE clients only, 1,000 trials, 2 page loads",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "stream.json")
    args = parser.parse_args()
    seconds = 5 if args.quick else args.seconds
    page_trials = 1000 if args.quick else args.page_trials

    floods, page = [], {}
    with tempfile.TemporaryDirectory(prefix="hpo-stream-") as tmp:
        root = Path(tmp)
        head = LocalRayHead(root / "ray", num_cpus=2)
        head.start()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        db_url = f"sqlite:///{root / 'hpo.db'}"
        env = {
            **os.environ,
            "HPO_HOME": str(root),
            "HPO_RAY_ADDRESS": head.dashboard_url,
            "HPO_PORT": str(port),
            "HPO_RUNNER_PYTHON": sys.executable,
            "HPO_API_TOKENS": f"{BENCH_TOKEN}=bench:admin",
        }
        log = (root / "service.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with HpoClient(url) as client:
                deadline = time.monotonic() + 120
                while not client.ready():
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the service did not start")
                    time.sleep(0.2)
            # --quick: only the loaded case (the paths run the same without SSE clients).
            for clients in (args.clients,) if args.quick else (0, args.clients):
                if not args.skip_tune:
                    floods.append(
                        {
                            "path": "Tune -> runner -> store",
                            **run_flood(url, db_url, seconds, clients),
                        }
                    )
                    print(json.dumps(floods[-1]), flush=True)
                floods.append(run_store_flood(url, db_url, seconds, clients, args.rate))
                print(json.dumps(floods[-1]), flush=True)
            study_id = populate(db_url, page_trials, 20)
            page = {
                "trials": page_trials,
                "results_per_trial_max": 20,
                **measure_page(url, study_id, loads=2 if args.quick else 3),
            }
            print(json.dumps(page), flush=True)
        finally:
            server.terminate()
            server.wait(30)
            log.close()
            head.stop()

    report = {
        "benchmark": "stream",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_version()}",
        "flood_seconds": seconds,
        "floods": floods,
        "page": page,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print(
        "| path | SSE clients | results/s | lag p50 (s) | lag p99 (s) | stored | missing "
        "| load 1m |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for f in floods:
        missing = f["iteration_gaps"] + (
            0 if not f["sse_clients"] else f["sse_clients"] - f["clients_complete"]
        )
        print(
            f"| {f['path']} | {f['sse_clients']} | {f['results_per_s']} "
            f"| {f['lag_p50_s']} | {f['lag_p99_s']} "
            f"| {f['results_stored']} | {missing} | {f['load_avg_1m_before_after']} |"
        )
    print(
        f"\npage, {page['trials']} trials x <=20 results: "
        f"first render {page['first_render_ms']} ms, "
        f"full render {page['full_render_ms']} ms (median of {page['loads']})"
    )
    ok = all(f["iteration_gaps"] == 0 for f in floods) and all(
        f.get("clients_complete", 0) == f["sse_clients"] for f in floods
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
