"""/comparisons: a baseline config against named variants over seeds, as a report.

A comparison is a study underneath (its id is the study's): the study routes, the event
stream and the page work on it too. The report is built from the stored trials on each
request, so it fills in as runs finish.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from service.api.auth import CreateLimitDep, PrincipalDep, VisibleStudyIdDep
from service.api.deps import StoreDep, StudiesDep
from service.api.limits import read_document
from service.api.schemas import ComparisonPublic
from service.comparisons.service import Comparison, ComparisonService
from service.comparisons.spec import ComparisonSpec
from service.store import StudyStore
from service.studies import StudyService, trial_budget

router = APIRouter(prefix="/comparisons", tags=["comparisons"])


def _public(comparison: Comparison, counts: dict[str, int]) -> ComparisonPublic:
    study = comparison.study
    return ComparisonPublic(
        id=study.id,
        name=study.name,
        status=study.status.value,
        trainable=str(study.spec.get("trainable", "")),
        baseline=comparison.baseline,
        variants=list(comparison.variants),
        repeats=comparison.repeats,
        seed_key=comparison.seed_key,
        budget=trial_budget(study.spec),
        trial_counts=counts,
        error=study.error,
        study_url=f"/api/v1/studies/{study.id}",
        page_url=f"/studies/{study.id}",
        ray_dashboard_url=study.ray_dashboard_url,
        report=comparison.report.to_json(),
    )


def _read(studies: StudyService, store: StudyStore, study_id: int) -> ComparisonPublic:
    comparison = ComparisonService(studies).get(study_id)
    counts = dict(store.summarize_study(study_id).trial_counts)
    return _public(comparison, counts)


_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ComparisonSpec.model_json_schema()},
            "application/yaml": {"schema": ComparisonSpec.model_json_schema()},
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ComparisonPublic,
    openapi_extra=_CREATE_BODY,
    responses={
        413: {"description": "the body is over the limit (HPO_MAX_BODY_BYTES)"},
        422: {"description": "invalid comparison, with the field path"},
        429: {"description": "the principal creates studies too fast"},
        503: {"description": "the Ray cluster or the database is unavailable"},
    },
    dependencies=[CreateLimitDep],
)
async def create_comparison(
    request: Request, principal: PrincipalDep, studies: StudiesDep, store: StoreDep
) -> ComparisonPublic:
    """Run the baseline and every variant ``repeats`` times (seeds 0..repeats-1)."""
    document = await read_document(request)
    service = ComparisonService(studies)
    record = await run_in_threadpool(service.create, document, principal.name)
    return await run_in_threadpool(_read, studies, store, record.id)


@router.get("/{study_id}", response_model=ComparisonPublic, responses={404: {}})
def get_comparison(
    study_id: VisibleStudyIdDep, studies: StudiesDep, store: StoreDep
) -> ComparisonPublic:
    return _read(studies, store, study_id)


_MEDIA = {"json": "application/json", "markdown": "text/markdown", "csv": "text/csv"}


@router.get(
    "/{study_id}/report",
    responses={
        200: {"content": {media: {} for media in _MEDIA.values()}},
        404: {},
    },
)
def comparison_report(
    study_id: VisibleStudyIdDep,
    studies: StudiesDep,
    format: Annotated[Literal["json", "markdown", "csv"], Query()] = "markdown",
) -> Response:
    """The report as a markdown table (default), CSV (one row per variant and metric)
    or JSON."""
    report = ComparisonService(studies).get(study_id).report
    if format == "json":
        import json

        text = json.dumps(report.to_json(), allow_nan=False)
    else:
        text = report.to_markdown() if format == "markdown" else report.to_csv()
    return Response(text, media_type=f"{_MEDIA[format]}; charset=utf-8")


@router.get(
    "/{study_id}/chart.png",
    responses={200: {"content": {"image/png": {}}}, 404: {}},
    response_class=Response,
)
def comparison_chart(study_id: VisibleStudyIdDep, studies: StudiesDep) -> Response:
    """A bar per variant and metric: the delta and its 95 % interval."""
    report = ComparisonService(studies).get(study_id).report
    return Response(report.bar_chart_png(), media_type="image/png")
