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
        assert tables == {
            "studies",
            "trials",
            "results",
            "events",
            "api_tokens",
            "alembic_version",
        }
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        upgrade(engine)
        upgrade(engine)
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == "0007"
    finally:
        engine.dispose()


def test_studies_of_older_versions_keep_an_owner(store_url: str) -> None:
    """Rows written before ownership (0002) still have an owner after the upgrade: their
    own, or ``local`` (the embedded default's principal) when it was left empty."""
    engine = create_store_engine(store_url)
    try:
        upgrade(engine, "0002")
        insert = sa.text(
            "INSERT INTO studies (name, owner, spec, metric, mode, status, num_results, "
            "created_at) VALUES (:name, :owner, '{}', 'loss', 'min', 'COMPLETED', 0, "
            "CURRENT_TIMESTAMP)"
        )
        with engine.begin() as conn:
            conn.execute(insert, {"name": "old", "owner": ""})
            conn.execute(insert, {"name": "ann's", "owner": "ann"})
        upgrade(engine)
        with engine.connect() as conn:
            owners = dict(conn.execute(sa.text("SELECT name, owner FROM studies")).all())
        assert owners == {"old": "local", "ann's": "ann"}
    finally:
        engine.dispose()
