"""FastAPI dependencies: the store, the study service and the launcher of the running app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.launcher import RayJobLauncher
from service.store import StudyStore
from service.studies import StudyService


def get_store(request: Request) -> StudyStore:
    return request.app.state.store  # type: ignore[no-any-return]


def get_studies(request: Request) -> StudyService:
    return request.app.state.studies  # type: ignore[no-any-return]


def get_launcher(request: Request) -> RayJobLauncher:
    return request.app.state.launcher  # type: ignore[no-any-return]


StoreDep = Annotated[StudyStore, Depends(get_store)]
StudiesDep = Annotated[StudyService, Depends(get_studies)]
LauncherDep = Annotated[RayJobLauncher, Depends(get_launcher)]
