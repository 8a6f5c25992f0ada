"""GET /studies/{id}/events: the study's Server-Sent Events, resumable with Last-Event-ID."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from sse_starlette import EventSourceResponse

from service.api.auth import VisibleStudyDep
from service.api.deps import StoreDep
from service.events import EventHub, has_events_after

router = APIRouter(prefix="/studies", tags=["events"])

HEARTBEAT_S = 15.0
MAX_EVENT_ID = 2**63 - 1
_EVENT_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only ("²".isdigit() is true)


@router.get(
    "/{study_id}/events",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "the event stream"},
        204: {"description": "the study has ended and there is nothing after Last-Event-ID"},
        404: {},
    },
)
async def study_events(
    study: VisibleStudyDep,
    request: Request,
    store: StoreDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_EVENT_ID, description="like Last-Event-ID")
    ] = None,
) -> Response:
    """``study`` (status), ``trial`` (created, state changes) and ``result`` events, each
    with an increasing ``id``. Resuming with ``Last-Event-ID`` (or ``?after=``) sends
    every later event once. The stream ends after the study's terminal ``study`` event.
    A browser's ``EventSource`` authenticates with the page's ``hpo_token`` cookie."""
    study_id = study.id
    cursor = after or 0
    if last_event_id:
        if not _EVENT_ID.fullmatch(last_event_id.strip()):
            raise HTTPException(status_code=422, detail="Last-Event-ID must be an event id")
        cursor = int(last_event_id.strip())
    if study.status.is_terminal and not await has_events_after(store, study_id, cursor):
        return Response(status_code=204)  # tells an EventSource not to reconnect
    hub: EventHub = request.app.state.event_hub
    return EventSourceResponse(
        hub.stream(study_id, cursor),
        ping=getattr(request.app.state, "sse_heartbeat_s", HEARTBEAT_S),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
