"""Map domain errors to HTTP answers: JSON ``{"detail": ...}`` with the right status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from search_spaces import InvalidSpec
from service.api.auth import PageAuthRequired, SignIn, sign_in_redirect, sign_in_response
from service.api.limits import BodyTooLarge
from service.errors import CannotExtend, LaunchError, NoBestTrial, RayUnavailable
from service.store import InvalidTransition, StoreUnavailable, StudyNotFound, TrialNotFound


def invalid_spec_detail(error: InvalidSpec) -> list[dict[str, object]]:
    """FastAPI's own 422 shape: a list of {loc, msg, type}, loc starting at "body"."""
    return [
        {"loc": ["body", *loc], "msg": msg, "type": "invalid_spec"} for loc, msg in error.errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidSpec)
    async def _invalid_spec(request: Request, error: InvalidSpec) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": invalid_spec_detail(error)})

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, error: BodyTooLarge) -> JSONResponse:
        return JSONResponse(
            status_code=413, content={"detail": str(error)}, headers={"Connection": "close"}
        )

    @app.exception_handler(StudyNotFound)
    @app.exception_handler(TrialNotFound)
    async def _not_found(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(NoBestTrial)
    async def _no_best(request: Request, error: NoBestTrial) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(InvalidTransition)
    @app.exception_handler(CannotExtend)
    async def _conflict(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error)})

    @app.exception_handler(PageAuthRequired)
    async def _sign_in_page(request: Request, error: PageAuthRequired) -> Response:
        return sign_in_response(request, error)

    @app.exception_handler(SignIn)
    async def _signed_in(request: Request, sign_in: SignIn) -> Response:
        return sign_in_redirect(request, sign_in)

    @app.exception_handler(RayUnavailable)
    @app.exception_handler(LaunchError)
    @app.exception_handler(StoreUnavailable)
    async def _unavailable(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(error)})
