"""FastAPI dependencies: the store, the study service, the launcher and the study cache.

All ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a hand-off that
costs more than these attribute reads.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.study_cache import StudyCache
from service.launcher import RayJobLauncher
from service.store import StudyStore
from service.studies import StudyService


async def get_store(request: Request) -> StudyStore:
    return request.app.state.store  # type: ignore[no-any-return]


async def get_studies(request: Request) -> StudyService:
    return request.app.state.studies  # type: ignore[no-any-return]


async def get_launcher(request: Request) -> RayJobLauncher:
    return request.app.state.launcher  # type: ignore[no-any-return]


async def get_study_cache(request: Request) -> StudyCache:
    return request.app.state.study_cache  # type: ignore[no-any-return]


StoreDep = Annotated[StudyStore, Depends(get_store)]
StudiesDep = Annotated[StudyService, Depends(get_studies)]
LauncherDep = Annotated[RayJobLauncher, Depends(get_launcher)]
StudyCacheDep = Annotated[StudyCache, Depends(get_study_cache)]
