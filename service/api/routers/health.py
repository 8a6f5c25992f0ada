"""Liveness and readiness probes: open (Kubernetes probes bring no token); readiness tells
only "ok" or "unavailable" unless the caller brings a valid token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.api.auth import OptionalPrincipalDep
from service.api.deps import LauncherDep, StoreDep
from service.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "not ready: the failing checks"}},
)
async def readyz(
    store: StoreDep, launcher: LauncherDep, principal: OptionalPrincipalDep
) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(store.ping)
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = str(error)
    try:
        await run_in_threadpool(launcher.ping)
        checks["ray"] = "ok"
    except Exception as error:
        checks["ray"] = str(error)
    ready = all(value == "ok" for value in checks.values())
    if principal is None:  # error texts may name hosts and users: only for callers we know
        checks = {name: "ok" if value == "ok" else "unavailable" for name, value in checks.items()}
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    if ready:
        return JSONResponse(status_code=200, content=body.model_dump())
    # Like every error answer, a "detail": the failing checks (their errors only for
    # callers we know).
    detail = "; ".join(f"{name}: {value}" for name, value in checks.items() if value != "ok")
    return JSONResponse(status_code=503, content={**body.model_dump(), "detail": detail})
