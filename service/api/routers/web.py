"""The web page: the study list at ``/``, a study's live page, its static files and snapshot.

All of it needs a token (see service.api.auth): a browser signs in once, with its own
dialog (Basic) or ``/?token=TOKEN``, and then the ``hpo_token`` cookie carries the token
for the page's API calls and its event stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
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

log = logging.getLogger(__name__)
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
# How far behind a snapshot may be served while a newer one is built. A running study
# moves on with every batch its runner writes, so without this nearly every page load
# would wait for a build; the page's event stream covers the difference.
SNAPSHOT_BEHIND_S = 2.0
_refreshes: set[asyncio.Task[None]] = set()  # held so that the loop does not drop them


def snapshot(store: StudyStore, study_id: int) -> dict[str, Any]:
    """What the page draws first (see service.api.snapshot)."""
    return build_snapshot(store, study_id)[0]


def _snapshot_entry(cache: StudyCache, study_id: int) -> Cached:
    document, revision = build_snapshot(cache.store, study_id)
    entry = Cached(revision, json.dumps(document, separators=(",", ":")).encode())
    cache.put(study_id, SNAPSHOT, entry)
    cache.keep_recent(study_id, SNAPSHOT, entry)
    return entry


def _refresh_soon(cache: StudyCache, study_id: int) -> None:
    """Build the study's snapshot in the background (once at a time per study)."""
    if not cache.claim_refresh(study_id, SNAPSHOT):
        return

    async def refresh() -> None:
        try:
            await run_in_threadpool(_snapshot_entry, cache, study_id)
        except Exception as error:  # the next reader builds it, or gets the error itself
            log.warning("rebuilding the snapshot of study %s failed: %s", study_id, error)
        finally:
            cache.release_refresh(study_id, SNAPSHOT)

    task = asyncio.get_running_loop().create_task(refresh())
    _refreshes.add(task)
    task.add_done_callback(_refreshes.discard)


@router.get("/api/v1/studies/{study_id}/snapshot", responses={404: {}})
async def study_snapshot(
    study_id: VisibleStudyIdDep, cache: StudyCacheDep, request: Request
) -> Response:
    """The study page's first view: the study, its trials (all of them up to 1,000, else
    a sample), the learning curves the page draws, and the event id to follow
    ``/events`` from (``?after=``). Cached like the study's document; once the study has
    moved on, the last one built is still served for ``SNAPSHOT_BEHIND_S`` seconds while
    a new one is built (its ``last_event_id`` is older: the events since bring the page
    up to date). ``Cache-Control: no-cache`` builds it now."""
    fresh = wants_fresh(request)
    entry = None if fresh else cache.get(study_id, SNAPSHOT)
    if entry is None and not fresh:
        behind = cache.recent(study_id, SNAPSHOT, SNAPSHOT_BEHIND_S)
        if behind is not None:
            _refresh_soon(cache, study_id)
            return json_response(behind.body)
    if entry is None:
        entry = await run_in_threadpool(_snapshot_entry, cache, study_id)
    return json_response(entry.body)
