"""An index on ``studies.ray_job_id``: a warm runner asks, several times a second, which
study its Ray job was given.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_studies_ray_job_id", "studies", ["ray_job_id"])


def downgrade() -> None:
    op.drop_index("ix_studies_ray_job_id", table_name="studies")
