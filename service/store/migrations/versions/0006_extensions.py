"""Study continuation: how often a study's targets were raised (``extensions``), how many
of its runs ended (``segments_done``) and their wall time in all (``run_seconds``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("extensions", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("segments_done", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("run_seconds", sa.Double(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("run_seconds")
        batch.drop_column("segments_done")
        batch.drop_column("extensions")
