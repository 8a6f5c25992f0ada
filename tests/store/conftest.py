"""Fixtures of the store tests: each test gets an empty store on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.store import StudyStore, open_store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of a new, empty database (a file under tmp_path, or a new PostgreSQL db)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'dir' / 'hpo.db'}"
    return str(request.getfixturevalue("postgres_db_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[StudyStore]:
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def unreachable_url(backend: str, tmp_path: Path) -> str:
    """A URL of the backend that no database answers: a directory in place of SQLite's
    file, or a PostgreSQL port that nothing listens on."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}"
    import socket

    with socket.socket() as sock:  # bound and closed: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere?connect_timeout=5"
