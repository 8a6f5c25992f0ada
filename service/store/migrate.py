"""Bringing a database's schema to the newest migration (Alembic ``upgrade head``) from code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from service.store.engine import writer

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# Serializes concurrent upgrades on PostgreSQL (API and runner opening a new database).
_PG_MIGRATION_LOCK = 0x68706F5F73746F72  # "hpo_stor"


def alembic_config() -> Config:
    """Alembic's config for the packaged migrations; works from an installed package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` in one transaction. On SQLite the write
    transaction (BEGIN IMMEDIATE), on PostgreSQL an advisory lock, makes concurrent
    callers take turns; the later ones find the schema current and do nothing."""
    config = alembic_config()
    with writer(engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
