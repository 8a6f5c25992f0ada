"""Creating the SQLAlchemy engine of the store for SQLite or PostgreSQL, with each one's settings.

SQLite: WAL journal, ``synchronous=NORMAL``, a busy timeout and foreign keys on every
connection; the parent directory of the file is created. The driver's own transaction
handling is switched off and the store emits ``BEGIN`` itself: ``BEGIN IMMEDIATE`` for
write sessions (engines made by :func:`writer`), so two writers queue on the busy
timeout instead of failing with a stale snapshot; plain ``BEGIN`` for reads, which never
block in WAL mode. PostgreSQL: ``pool_pre_ping`` and a connect timeout.
Both: JSON is written strictly (see jsonsafe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import StaticPool

from service.store import jsonsafe

WRITE_OPTION = "hpo_store_write"
SQLITE_BUSY_TIMEOUT_MS = 15_000
PG_CONNECT_TIMEOUT_S = 10
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def create_store_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url`` set up for the store. Raises ValueError for other databases
    and OSError when a SQLite file's directory cannot be created."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"unsupported database {backend!r}; use sqlite or postgresql")
    options: dict[str, Any] = {"json_serializer": jsonsafe.dumps}
    if backend == "sqlite":
        if _is_sqlite_memory(parsed):
            # One shared connection, or every connection would see its own empty database.
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        elif parsed.database:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        options.update(kwargs)
        engine = create_engine(parsed, **options)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if "connect_timeout" not in parsed.query and parsed.get_driver_name() == "psycopg":
        options["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    options["pool_pre_ping"] = True
    options.update(kwargs)
    return create_engine(parsed, **options)


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) marked so that its transactions are write transactions."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (_sqlite_on_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(WRITE_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")
