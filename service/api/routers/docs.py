"""The OpenAPI document and its docs pages (/docs, /redoc), behind the same token as the rest."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, Response

from service.api.auth import PageAuthDep, PrincipalDep, remember

router = APIRouter(include_in_schema=False)

OPENAPI_URL = "/openapi.json"


@router.get(OPENAPI_URL)
def openapi(request: Request, _: PrincipalDep) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def swagger_ui(request: Request, auth: PageAuthDep) -> Response:
    page = get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} - docs")
    return remember(page, request, auth)


@router.get("/redoc")
def redoc(request: Request, auth: PageAuthDep) -> Response:
    page = get_redoc_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} - ReDoc")
    return remember(page, request, auth)
