"""The Alembic migrations create exactly the schema of the models, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from service.store.engine import create_store_engine
from service.store.migrate import alembic_config, upgrade
from service.store.models import Base


def test_migrations_match_models(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert context.get_current_revision() == head
            tables = set(sa.inspect(conn).get_table_names())
        assert tables == {"studies", "trials", "results", "events", "alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        upgrade(engine)
        upgrade(engine)
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == "0002"
    finally:
        engine.dispose()
