"""The FastAPI application: lifespan (store, Ray, job monitor), routers and error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from service import __version__
from service.api.errors import install_error_handlers
from service.api.limits import BodySizeLimit
from service.api.routers import comparisons, docs, events, health, studies, trainables, web
from service.api.study_cache import StudyCache
from service.auth.authenticator import build_authenticator
from service.auth.ratelimit import RateLimiter
from service.auth.tokens import AuthConfigError
from service.events import EventHub
from service.launcher import RayJobLauncher
from service.metrics import install_metrics, monitoring
from service.ray_local import LocalRayHead
from service.settings import Settings, get_settings
from service.spec import StudySpec
from service.store import StudyStatus, open_store
from service.studies import StudyService
from service.warm_runners import WarmRunnerPool

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


async def _watch_jobs(service: StudyService, interval_s: float) -> None:
    """Reconcile studies with their Ray jobs, and keep the warm runners topped up."""
    # Until one round has succeeded, also launch studies stored before this service
    # started that never got a Ray job (the last service died between the two steps).
    started = dt.datetime.now(dt.timezone.utc)
    first_round = True
    while True:
        try:
            await run_in_threadpool(
                functools.partial(
                    service.reconcile, submit_unlaunched_before=started if first_round else None
                )
            )
            first_round = False
        except Exception as error:  # keep watching; the next round may succeed
            log.warning("reconciling studies with Ray jobs failed: %s", error)
        if service.warm_runners is not None:
            service.warm_runners.refill_in_background()  # submitting one takes seconds
        await asyncio.sleep(interval_s)


def _stop_unfinished(service: StudyService) -> None:
    """The embedded Ray head goes away with the service: stop its studies cleanly first."""
    for status in (StudyStatus.PENDING, StudyStatus.RUNNING):
        for record in service.store.list_studies(status=status, limit=10_000).items:
            try:
                service.stop(record.id)
            except Exception as error:
                log.warning("could not stop study %s: %s", record.id, error)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.home.mkdir(parents=True, exist_ok=True)
    # The store and the tokens first: a service that must not start stops before Ray.
    store = open_store(settings.resolved_database_url)
    try:
        app.state.authenticator = await run_in_threadpool(build_authenticator, settings, store)
    except BaseException as error:
        if isinstance(error, AuthConfigError):
            log.error("%s", error)
        store.close()
        raise
    head: LocalRayHead | None = None
    if settings.ray_address:
        jobs_address = settings.ray_address
        runner_python = settings.runner_python or "python"
    else:
        head = LocalRayHead(settings.local_ray_dir, num_cpus=settings.ray_num_cpus)
        try:
            # A head left running by a service that was killed is adopted, with the
            # studies running on it.
            await run_in_threadpool(functools.partial(head.start, adopt=True))
        except BaseException:
            store.close()
            raise
        jobs_address = head.dashboard_url
        runner_python = settings.runner_python or sys.executable
    launcher = RayJobLauncher(
        jobs_address,
        dashboard_url=settings.ray_dashboard_url or jobs_address,
        runner_python=runner_python,
        env_vars={
            "HPO_DATABASE_URL": settings.resolved_database_url,
            "HPO_STORAGE_PATH": settings.resolved_storage_path,
            "HPO_HOME": str(settings.home),
        },
    )
    warm_runners = (
        WarmRunnerPool(launcher, settings.warm_runners) if settings.warm_runners else None
    )
    service = StudyService(
        store, launcher, validate_capacity=settings.validate_capacity, warm_runners=warm_runners
    )
    app.state.store, app.state.launcher, app.state.studies = store, launcher, service
    app.state.ray_dashboard_url = launcher.dashboard_url
    app.state.event_hub = EventHub(store)
    app.state.study_cache = cache = StudyCache(store)
    watcher = asyncio.create_task(_watch_jobs(service, settings.job_poll_interval_s))
    validator = asyncio.create_task(cache.run(), name="hpo-study-cache")
    try:
        async with monitoring(app, store):
            yield
    finally:
        for task in (watcher, validator):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app.state.event_hub.close()
        if warm_runners is not None:
            await run_in_threadpool(warm_runners.close)
        if head is not None:
            await run_in_threadpool(_stop_unfinished, service)
            await run_in_threadpool(head.stop)
        store.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="hpo-service",
        version=__version__,
        description="Hyperparameter search studies on Ray: submit, watch, compare. "
        "Every route but /healthz, /readyz and /metrics needs an API token "
        "(`Authorization: Bearer <token>`; `hpo token show` prints yours).",
        lifespan=lifespan,
        # Served by routers.docs, behind the token like everything else.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings = settings or get_settings()
    app.state.create_limiter = RateLimiter(
        settings.study_create_per_minute, settings.study_create_burst
    )
    install_error_handlers(app)
    # Inside the request timer, so refused bodies are counted too.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_metrics(app)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(studies.router, prefix=API_PREFIX)
    app.include_router(comparisons.router, prefix=API_PREFIX)
    app.include_router(events.router, prefix=API_PREFIX)
    app.include_router(trainables.router, prefix=API_PREFIX)
    app.include_router(web.router)
    _add_spec_schema(app)
    return app


def _add_spec_schema(app: FastAPI) -> None:
    """The create endpoint reads its body by hand (JSON or YAML); publish its schema."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        spec_schema = StudySpec.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(spec_schema.pop("$defs", {}))
        components["StudySpec"] = spec_schema
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
