"""The web page: the study list at ``/``, a study's live page, its static files and snapshot.

All of it needs a token (see service.api.auth): a browser signs in once, with its own
dialog (Basic) or ``/?token=TOKEN``, and then the ``hpo_token`` cookie carries the token
for the page's API calls and its event stream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from service.api.auth import PageAuthDep, VisibleStudyIdDep, remember
from service.api.deps import StudyCacheDep
from service.api.documents import json_response, wants_fresh
from service.api.snapshot import build as build_snapshot
from service.api.study_cache import Cached, StudyCache
from service.store import StudyStore

STATIC_DIR = Path(__file__).resolve().parents[2] / "web" / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}

router = APIRouter(tags=["web"])


def _page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type=MEDIA_TYPES[".html"])


@router.get("/", include_in_schema=False)
def index(request: Request, auth: PageAuthDep) -> Response:
    return remember(_page(), request, auth)


@router.get("/studies/{study_id}", include_in_schema=False)
def study_page(study_id: int, request: Request, auth: PageAuthDep) -> Response:
    return remember(_page(), request, auth)


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str, request: Request, auth: PageAuthDep) -> Response:
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(status_code=404, detail=f"no static file {name!r}")
    response = FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": "no-cache"},
    )
    return remember(response, request, auth)


SNAPSHOT = "snapshot"  # the study cache's kind for the page's snapshot


def snapshot(store: StudyStore, study_id: int) -> dict[str, Any]:
    """What the page draws first (see service.api.snapshot)."""
    return build_snapshot(store, study_id)[0]


def _snapshot_entry(cache: StudyCache, study_id: int) -> Cached:
    document, revision = build_snapshot(cache.store, study_id)
    entry = Cached(revision, json.dumps(document, separators=(",", ":")).encode())
    cache.put(study_id, SNAPSHOT, entry)
    return entry


@router.get("/api/v1/studies/{study_id}/snapshot", responses={404: {}})
async def study_snapshot(
    study_id: VisibleStudyIdDep, cache: StudyCacheDep, request: Request
) -> Response:
    """The study page's first view: the study, its trials (all of them up to 1,000, else
    a sample), the learning curves the page draws, and the event id to follow
    ``/events`` from (``?after=``). Cached like the study's document
    (``Cache-Control: no-cache`` builds it now)."""
    entry = None if wants_fresh(request) else cache.get(study_id, SNAPSHOT)
    if entry is None:
        entry = await run_in_threadpool(_snapshot_entry, cache, study_id)
    return json_response(entry.body)
