"""Prometheus metrics: studies, trials, results ingested, ingest lag and API request latency.

Studies and trials are counted from the store at scrape time. Results are counted, and
their ingest lag (``stored_at - reported_at``: from the trial's report reaching the Tune
driver to the row in the store) observed, by :class:`IngestMonitor`, which tails the
store's event log; the runner writes results in its own process, so the service learns
about them only from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator

from fastapi import FastAPI, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.store import StudyStore

log = logging.getLogger(__name__)

LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StoreCollector(Collector):
    """hpo_studies{status} and hpo_trials{state}, read from the store at each scrape."""

    def __init__(self, store: Callable[[], StudyStore | None]) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        store = self._store()
        if store is None:
            return
        studies = GaugeMetricFamily("hpo_studies", "Studies by status", labels=["status"])
        for status, count in store.status_counts().items():
            studies.add_metric([status], count)
        trials = GaugeMetricFamily("hpo_trials", "Trials of all studies by state", labels=["state"])
        for state, count in store.trial_state_counts().items():
            trials.add_metric([state], count)
        yield studies
        yield trials


class ServiceMetrics:
    """The service's own registry (one per app, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.store: StudyStore | None = None
        self.registry.register(StoreCollector(lambda: self.store))
        self.results_ingested = Counter(
            "hpo_results_ingested",
            "Results stored (seen in the store's event log since the service started)",
            registry=self.registry,
        )
        self.ingest_lag = Histogram(
            "hpo_ingest_lag_seconds",
            "Seconds from a trial's report (at the Tune driver) to its row in the store",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "hpo_http_request_duration_seconds",
            "API request latency (until the response starts, for streams)",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class IngestMonitor:
    """Tails the event log for stored results: counts them and observes their lag."""

    def __init__(self, store: StudyStore, metrics: ServiceMetrics, *, interval_s: float = 1.0):
        self.store, self.metrics, self.interval_s = store, metrics, interval_s
        self.cursor = 0
        self._lock = asyncio.Lock()
        self._started = asyncio.Event()

    async def poll_now(self) -> None:
        """One poll, never two at once (the loop and a scrape); none before the start."""
        if not self._started.is_set():
            return
        async with self._lock:
            await run_in_threadpool(self.poll)

    def poll(self) -> int:
        """Read what was stored since the last poll; returns how many results."""
        seen = 0
        while True:
            batch = self.store.ingested_after(self.cursor, 5000)
            for item in batch:
                lag = (item.stored_at - item.reported_at).total_seconds()
                self.metrics.ingest_lag.observe(max(lag, 0.0))
            if batch:
                self.cursor = batch[-1].event_id
                self.metrics.results_ingested.inc(len(batch))
                seen += len(batch)
            if len(batch) < 5000:
                return seen

    async def run(self) -> None:
        while not self._started.is_set():
            try:
                self.cursor = await run_in_threadpool(self.store.last_event_id, None)
                self._started.set()
            except Exception as error:
                log.warning("reading the event log failed: %s", error)
                await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self.poll_now()
            except Exception as error:  # the database may be back on the next round
                log.warning("reading ingested results failed: %s", error)
            await asyncio.sleep(self.interval_s)


@contextlib.asynccontextmanager
async def monitoring(app: FastAPI, store: StudyStore) -> AsyncIterator[None]:
    """While the app runs: scrape-time counts from ``store`` and the ingest monitor."""
    metrics: ServiceMetrics = app.state.metrics
    metrics.store = store
    monitor = app.state.ingest_monitor = IngestMonitor(store, metrics)
    task = asyncio.create_task(monitor.run(), name="hpo-ingest-monitor")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        metrics.store = None
        app.state.ingest_monitor = None


def route_template(scope: Scope) -> str:
    """The matched route as a template (``/api/v1/studies/{study_id}``), so the label's
    values stay few; "unmatched" for paths no route served."""
    if scope.get("route") is None:
        return "unmatched"
    params = {str(value): name for name, value in (scope.get("path_params") or {}).items()}
    parts = [f"{{{params[part]}}}" if part in params else part for part in scope["path"].split("/")]
    return "/".join(parts)


class RequestTimer:
    """ASGI middleware: API latency until the response starts (streams are not held up)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        timed = False

        def observe(status: int) -> None:
            nonlocal timed
            if timed:
                return
            timed = True
            route = route_template(scope)
            self.metrics.request_latency.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - start
            )

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                observe(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            observe(500)


def install_metrics(app: FastAPI) -> None:
    """The registry, the request-latency middleware and the unauthenticated ``/metrics``."""
    metrics = ServiceMetrics()
    app.state.metrics = metrics

    app.add_middleware(RequestTimer, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        monitor = getattr(app.state, "ingest_monitor", None)
        if monitor is not None:  # count what was stored since the last poll
            await monitor.poll_now()
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
