"""/studies: create (JSON or YAML), list, get, stop, delete, trials and their results.

Every route needs a token; a principal sees only the studies it owns (another's study
answers 404, as a missing one does), an admin sees all.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from service.api.auth import (
    MAX_IDENTIFIER_LENGTH,
    NO_NUL,
    CreateLimitDep,
    PrincipalDep,
    VisibleStudyDep,
)
from service.api.deps import StoreDep, StudiesDep
from service.api.limits import BodyTooLarge
from service.api.schemas import (
    ResultPublic,
    StudyList,
    StudyPublic,
    TrialList,
    TrialPublic,
    TrialResults,
)
from service.spec import parse_spec_document
from service.store import StudyStatus, StudyStore, TrialState
from service.studies import trial_budget

router = APIRouter(prefix="/studies", tags=["studies"])

MAX_OFFSET = 2**31 - 1

_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/StudySpec"}},
            "application/yaml": {"schema": {"$ref": "#/components/schemas/StudySpec"}},
        },
    }
}


def study_public(store: StudyStore, study_id: int) -> StudyPublic:
    summary = store.summarize_study(study_id)
    return StudyPublic.of(summary, trial_budget(summary.study.spec))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StudyPublic,
    openapi_extra=_CREATE_BODY,
    responses={
        413: {"description": "the body is over the limit (HPO_MAX_BODY_BYTES)"},
        422: {"description": "invalid spec, with the field path"},
        429: {"description": "the principal creates studies too fast"},
        503: {"description": "the Ray cluster or the database is unavailable"},
    },
    dependencies=[CreateLimitDep],
)
async def create_study(
    request: Request, principal: PrincipalDep, studies: StudiesDep, store: StoreDep
) -> StudyPublic:
    """Create and launch a study owned by the caller."""
    body = await request.body()  # bounded by the BodySizeLimit middleware
    limit = request.app.state.settings.max_body_bytes
    if len(body) > limit:
        raise BodyTooLarge(limit)
    document = await run_in_threadpool(
        parse_spec_document, body, request.headers.get("content-type")
    )
    record = await run_in_threadpool(studies.create, document, principal.name)
    return await run_in_threadpool(study_public, store, record.id)


@router.get("", response_model=StudyList)
def list_studies(
    store: StoreDep,
    principal: PrincipalDep,
    status_filter: Annotated[StudyStatus | None, Query(alias="status")] = None,
    owner: Annotated[
        str | None,
        Query(
            max_length=MAX_IDENTIFIER_LENGTH,
            pattern=NO_NUL,
            description="only this owner's (admins)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> StudyList:
    """The caller's studies (an admin: everyone's, or one ``owner``'s), newest first."""
    if not principal.is_admin:
        if owner is not None and owner != principal.name:
            return StudyList(items=[], total=0, limit=limit, offset=offset)
        owner = principal.name
    page = store.list_studies(status=status_filter, owner=owner, limit=limit, offset=offset)
    items = [study_public(store, record.id) for record in page.items]
    return StudyList(items=items, total=page.total, limit=page.limit, offset=page.offset)


@router.get("/{study_id}", response_model=StudyPublic, responses={404: {}})
def get_study(study: VisibleStudyDep, store: StoreDep) -> StudyPublic:
    return study_public(store, study.id)


@router.post("/{study_id}/stop", response_model=StudyPublic, responses={404: {}, 409: {}})
def stop_study(study: VisibleStudyDep, studies: StudiesDep, store: StoreDep) -> StudyPublic:
    studies.stop(study.id)
    return study_public(store, study.id)


@router.delete("/{study_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}, 409: {}})
def delete_study(study: VisibleStudyDep, studies: StudiesDep) -> Response:
    studies.delete(study.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{study_id}/trials", response_model=TrialList, responses={404: {}})
def list_trials(
    study: VisibleStudyDep,
    store: StoreDep,
    state: TrialState | None = None,
    order: Annotated[str, Query(pattern="^(number|best)$")] = "number",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> TrialList:
    page = store.list_trials(study.id, state=state, limit=limit, offset=offset, order=order)
    return TrialList(
        items=[TrialPublic.of(trial) for trial in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/{study_id}/trials/{trial_id}/results", response_model=TrialResults, responses={404: {}}
)
def trial_results(
    study: VisibleStudyDep,
    trial_id: Annotated[str, Path(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, pattern=NO_NUL)],
    store: StoreDep,
) -> TrialResults:
    results = store.get_results(study.id, trial_id)
    return TrialResults(
        study_id=study.id, trial_id=trial_id, items=[ResultPublic.of(r) for r in results]
    )
