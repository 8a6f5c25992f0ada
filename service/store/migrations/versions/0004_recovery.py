"""Crash recovery: why a trial failed (``trials.reason``), how often a study's Ray job
was resubmitted (``studies.restarts``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("reason", sa.String(32), nullable=True))
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("restarts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("restarts")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("reason")
