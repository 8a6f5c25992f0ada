"""/studies: create (JSON or YAML), list, get, stop, delete, trials and their results.

Every route needs a token; a principal sees only the studies it owns (another's study
answers 404, as a missing one does), an admin sees all. Study documents come from the
study cache (see service.api.study_cache for how current they are); the token, the
owner and admin rights are checked on every request all the same.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from service.api.auth import (
    MAX_IDENTIFIER_LENGTH,
    MAX_STUDY_ID,
    NO_NUL,
    CreateLimitDep,
    PrincipalDep,
    VisibleStudyDep,
    VisibleStudyIdDep,
)
from service.api.deps import StoreDep, StudiesDep, StudyCacheDep
from service.api.documents import (
    build_study_entry,
    json_response,
    study_entry,
    study_public,
    wants_fresh,
)
from service.api.limits import read_document
from service.api.schemas import (
    BestTrialPublic,
    ResultPublic,
    StudyList,
    StudyPublic,
    TrialList,
    TrialPublic,
    TrialResults,
)
from service.extension import ExtendRequest
from service.store import StudyNotFound, StudyStatus, TrialState

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


__all__ = ["router", "study_public"]


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
    request: Request, principal: PrincipalDep, studies: StudiesDep, cache: StudyCacheDep
) -> Response:
    """Create and launch a study owned by the caller."""
    document = await read_document(request)
    record = await run_in_threadpool(studies.create, document, principal.name)
    entry = await run_in_threadpool(build_study_entry, cache, record.id)
    return json_response(entry.body, status.HTTP_201_CREATED)


@router.get("", response_model=StudyList)
async def list_studies(
    store: StoreDep,
    cache: StudyCacheDep,
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
) -> Response:
    """The caller's studies (an admin: everyone's, or one ``owner``'s), newest first."""
    if not principal.is_admin:
        if owner is not None and owner != principal.name:
            empty = StudyList(items=[], total=0, limit=limit, offset=offset)
            return json_response(empty.model_dump_json().encode())
        owner = principal.name
    page = await run_in_threadpool(
        store.list_studies, status=status_filter, owner=owner, limit=limit, offset=offset
    )
    bodies = []
    for record in page.items:
        try:
            bodies.append((await study_entry(cache, record.id)).body)
        except StudyNotFound:  # deleted since the list was read
            continue
    # The cached documents as they are: StudyList's JSON without decoding them again.
    tail = f'],"total":{page.total},"limit":{page.limit},"offset":{page.offset}}}'
    return json_response(b'{"items":[' + b",".join(bodies) + tail.encode())


@router.get("/{study_id}", response_model=StudyPublic, responses={404: {}})
async def get_study(
    study_id: Annotated[int, Path(ge=1, le=MAX_STUDY_ID)],
    principal: PrincipalDep,
    cache: StudyCacheDep,
    request: Request,
) -> Response:
    """The study with its counts per trial state and best trial. From the study cache;
    ``Cache-Control: no-cache`` reads the store now."""
    entry = await study_entry(cache, study_id, fresh=wants_fresh(request))
    owner = cache.owner(study_id)
    if owner is None:
        owner = await run_in_threadpool(cache.load_owner, study_id)
    if not principal.may_see(owner):
        raise StudyNotFound(study_id)
    return json_response(entry.body)


@router.post("/{study_id}/stop", response_model=StudyPublic, responses={404: {}, 409: {}})
def stop_study(study: VisibleStudyDep, studies: StudiesDep, cache: StudyCacheDep) -> Response:
    cache.invalidate(study.id)
    studies.stop(study.id)
    return json_response(build_study_entry(cache, study.id).body)


@router.post(
    "/{study_id}/extend",
    response_model=StudyPublic,
    responses={
        404: {},
        409: {"description": "the study cannot go on (a grid, a failed study)"},
        422: {"description": "a target that is not raised, with the field path"},
        503: {"description": "the Ray cluster or the database is unavailable"},
    },
)
def extend_study(
    body: ExtendRequest, study: VisibleStudyDep, studies: StudiesDep, cache: StudyCacheDep
) -> Response:
    """Raise the study's ``num_samples`` and/or ``time_budget_s`` (new totals). A running
    study goes on when its current run ends; a finished one runs again. Either way its
    searcher goes on from every trial it has run (no finished configuration again)."""
    cache.invalidate(study.id)
    studies.extend(study.id, body)
    return json_response(build_study_entry(cache, study.id).body)


@router.get("/{study_id}/best", response_model=BestTrialPublic, responses={404: {}})
def best_trial(study_id: VisibleStudyIdDep, studies: StudiesDep) -> BestTrialPublic:
    """The best trial's config, ready to post back as a new study's ``config`` or a
    comparison's ``baseline``, with its value and metrics. 404 while no trial has one."""
    return BestTrialPublic(**asdict(studies.best(study_id)))


@router.delete("/{study_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}, 409: {}})
def delete_study(study: VisibleStudyDep, studies: StudiesDep, cache: StudyCacheDep) -> Response:
    studies.delete(study.id)
    cache.forget(study.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{study_id}/trials", response_model=TrialList, responses={404: {}})
def list_trials(
    study_id: VisibleStudyIdDep,
    store: StoreDep,
    state: TrialState | None = None,
    order: Annotated[str, Query(pattern="^(number|best)$")] = "number",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    after: Annotated[
        int | None,
        Query(
            ge=-1,
            le=MAX_OFFSET,
            description="keyset paging: only trials numbered above this (number order); "
            "pass the previous page's next_after",
        ),
    ] = None,
) -> TrialList:
    """The study's trials, a page at a time. Deep pages: ``after`` (the previous page's
    ``next_after``) costs the same on any page, where a large ``offset`` may not."""
    if after is not None and order != "number":
        raise HTTPException(
            status_code=422,
            detail=[
                {
                    "loc": ["query", "after"],
                    "msg": "after pages only with order=number",
                    "type": "value_error",
                }
            ],
        )
    page = store.list_trials(
        study_id, state=state, limit=limit, offset=offset, order=order, after=after
    )
    items = [TrialPublic.of(trial) for trial in page.items]
    full = order == "number" and len(items) == limit
    return TrialList(
        items=items,
        total=page.total,
        limit=page.limit,
        offset=page.offset,
        next_after=items[-1].number if full else None,
    )


@router.get(
    "/{study_id}/trials/{trial_id}/results", response_model=TrialResults, responses={404: {}}
)
def trial_results(
    study_id: VisibleStudyIdDep,
    trial_id: Annotated[str, Path(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, pattern=NO_NUL)],
    store: StoreDep,
) -> TrialResults:
    results = store.get_results(study_id, trial_id)
    return TrialResults(
        study_id=study_id, trial_id=trial_id, items=[ResultPublic.of(r) for r in results]
    )
