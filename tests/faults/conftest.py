"""Fixtures of the fault tests: a live service on the session Ray cluster whose store is
the test PostgreSQL server, so that a test can take the database away and bring it back."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.store import open_store
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.ray_cluster import RayCluster
from tests.fixtures.service import LiveService, running_service

# Ray job ids are named after study ids ("hpo-study-<id>") and the session's Ray cluster
# never forgets a job: a fresh database would count from 1 again and collide with the
# studies of other services in the session. Each fault-test database counts from here.
_FIRST_STUDY_IDS = itertools.count(700_000 + (os.getpid() % 1000) * 1000, 100)


@dataclass(frozen=True)
class PgService:
    live: LiveService
    postgres: PostgresServer


def start_study_ids_at(database_url: str, first: int) -> None:
    """Create the schema and make the next study id ``first`` (PostgreSQL only)."""
    store = open_store(database_url)
    store.close()
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('studies', 'id'), :n, false)"),
                {"n": first},
            )
    finally:
        engine.dispose()


@pytest.fixture
def pg_service(
    ray_cluster: RayCluster,
    postgres_server: PostgresServer,
    postgres_db_url: str,
    tmp_path: Path,
) -> Iterator[PgService]:
    """An hpo service (uvicorn in a thread, real HTTP, Ray jobs on the session cluster)
    with its own PostgreSQL database; its runners get that database's URL."""
    start_study_ids_at(postgres_db_url, next(_FIRST_STUDY_IDS))
    try:
        with running_service(
            ray_cluster, tmp_path / "hpo-home", database_url=postgres_db_url
        ) as live:
            yield PgService(live, postgres_server)
    finally:
        if not postgres_server.is_running():  # a failed test must not leave it down
            postgres_server.start()
