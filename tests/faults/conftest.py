"""Fixtures of the fault tests: a live service on the session Ray cluster whose store is
the test PostgreSQL server, so that a test can take the database away and bring it back."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from service.api.app import create_app
from service.client import HpoClient
from service.ray_local import free_port
from service.settings import Settings
from service.store import open_store
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.ray_cluster import RayCluster
from tests.fixtures.service import ADMIN, LiveService, session_tokens, tokens_setting

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
    home = tmp_path / "hpo-home"
    port = free_port()
    tokens = session_tokens()
    settings = Settings(
        home=home,
        database_url=postgres_db_url,
        ray_address=ray_cluster.dashboard_url,
        runner_python=sys.executable,
        host="127.0.0.1",
        port=port,
        job_poll_interval_s=1.0,
        api_tokens=tokens_setting(tokens),
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="hpo-fault-service", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    with HpoClient(base_url) as client:
        deadline = time.monotonic() + 60
        while not client.ready():
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the fault-test service did not become ready")
            time.sleep(0.2)
    try:
        yield PgService(
            LiveService(
                url=f"http://{ADMIN}:{tokens[ADMIN]}@127.0.0.1:{port}",
                home=home,
                database_url=postgres_db_url,
                ray=ray_cluster,
                base_url=base_url,
                tokens=tokens,
            ),
            postgres_server,
        )
    finally:
        if not postgres_server.is_running():  # a failed test must not leave it down
            postgres_server.start()
        server.should_exit = True
        thread.join(30)
