"""A study's public document (``GET /studies/{id}``), encoded once and served from the cache."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from service.api.schemas import StudyPublic
from service.api.study_cache import Cached, StudyCache
from service.store import StudyStore
from service.studies import trial_budget

STUDY = "study"  # the cache's kind for this document
JSON = "application/json"


def study_public(store: StudyStore, study_id: int) -> StudyPublic:
    """The document, read now (one session). Raises StudyNotFound."""
    return study_public_and_revision(store, study_id)[0]


def study_public_and_revision(store: StudyStore, study_id: int) -> tuple[StudyPublic, int]:
    summary = store.summarize_study(study_id)
    return StudyPublic.of(summary, trial_budget(summary.study.spec)), summary.revision


def build_study_entry(cache: StudyCache, study_id: int) -> Cached:
    """Read and encode the document, remember the owner, keep it in the cache."""
    public, revision = study_public_and_revision(cache.store, study_id)
    cache.remember_owner(study_id, public.owner)
    entry = Cached(revision, public.model_dump_json().encode())
    cache.put(study_id, STUDY, entry)
    return entry


def wants_fresh(request: Request) -> bool:
    """``Cache-Control: no-cache`` (or ``no-store``): the client asks for the store's now."""
    value = request.headers.get("cache-control", "").lower()
    return "no-cache" in value or "no-store" in value


async def study_entry(cache: StudyCache, study_id: int, *, fresh: bool = False) -> Cached:
    """The cached document, or one read now. Raises StudyNotFound."""
    entry = None if fresh else cache.get(study_id, STUDY)
    if entry is None:
        entry = await run_in_threadpool(build_study_entry, cache, study_id)
    return entry


def json_response(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type=JSON)
