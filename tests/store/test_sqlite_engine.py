"""SQLite settings of the store's engine: WAL, synchronous=NORMAL, foreign keys, busy timeout."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from service.store import StudyStatus, open_store
from service.store.engine import SQLITE_BUSY_TIMEOUT_MS, create_store_engine
from service.store.sql import SqlStudyStore


def test_sqlite_pragmas_and_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "hpo.db"
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        with engine.connect() as conn:
            pragma = conn.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    finally:
        engine.dispose()


def test_sqlite_foreign_keys_are_enforced(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'hpo.db'}")
    assert isinstance(store, SqlStudyStore)
    try:
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO trials (study_id, trial_id, number, config, state, num_results,"
                " created_at) VALUES (424242, 't', 0, '{}', 'RUNNING', 0, '2026-01-01')"
            )
    finally:
        store.close()


def test_in_memory_sqlite_works_in_one_process() -> None:
    store = open_store("sqlite://")
    try:
        study = store.create_study(name="m", spec={}, metric="loss", mode="min")
        assert store.transition_study(study.id, StudyStatus.RUNNING).status is StudyStatus.RUNNING
    finally:
        store.close()


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        open_store("mysql+pymysql://u@localhost/db")
