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

from service.api.auth import PageAuthDep, VisibleStudyDep, remember
from service.api.deps import StoreDep
from service.api.routers.studies import study_public
from service.store import StudyStore

STATIC_DIR = Path(__file__).resolve().parents[2] / "web" / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}
SNAPSHOT_TRIALS = 200_000

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


def snapshot(store: StudyStore, study_id: int) -> dict[str, Any]:
    """What the page draws first, in one read: the study, its trials and every learning
    curve (columnar), and the event id to follow the stream from. Events after that id
    may repeat parts of it; the page applies them idempotently."""
    last_event_id = store.last_event_id(study_id)
    study = study_public(store, study_id)
    trials = store.list_trials(study_id, limit=SNAPSHOT_TRIALS).items
    curves: dict[str, list[list[Any]]] = {}
    for trial_id, iteration, value in store.metric_series(study_id):
        curve = curves.setdefault(trial_id, [[], []])
        curve[0].append(iteration)
        curve[1].append(value if isinstance(value, int | float) else None)
    return {
        "last_event_id": last_event_id,
        "study": study.model_dump(mode="json"),
        "trials": [
            {
                "trial_id": t.trial_id,
                "number": t.number,
                "state": t.state.value,
                "config": t.config,
                "best_value": t.best_value,
                "last_value": t.last_value,
                "num_results": t.num_results,
                "last_iteration": t.last_iteration,
                "finished_at": t.finished_at.isoformat() if t.finished_at else None,
            }
            for t in trials
        ],
        "curves": curves,
    }


@router.get("/api/v1/studies/{study_id}/snapshot", responses={404: {}})
async def study_snapshot(study: VisibleStudyDep, store: StoreDep) -> Response:
    """The study page's first view: study, trials, learning curves, and the event id
    to follow ``/events`` from (``?after=``)."""

    def encoded() -> bytes:
        return json.dumps(snapshot(store, study.id), separators=(",", ":")).encode()

    return Response(await run_in_threadpool(encoded), media_type="application/json")
