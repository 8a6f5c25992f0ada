"""The initial schema: studies, trials, results.

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit ids on PostgreSQL; INTEGER (the rowid alias) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("metric", sa.String(255), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("ray_job_id", sa.String(255), nullable=True),
        sa.Column("ray_dashboard_url", sa.Text(), nullable=True),
        sa.Column("num_results", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_studies"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "trials",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.Column("best_value", sa.Double(), nullable=True),
        sa.Column("num_results", sa.Integer(), nullable=False),
        sa.Column("last_iteration", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
            name="fk_trials_study_id_studies",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("study_id", "trial_id", name="uq_trials_study_id_trial_id"),
        sa.UniqueConstraint("study_id", "id", name="uq_trials_study_id_id"),
    )
    op.create_index("ix_trials_study_id_number", "trials", ["study_id", "number"], unique=True)
    op.create_index("ix_trials_study_id_best_value", "trials", ["study_id", "best_value"])
    op.create_index("ix_trials_study_id_state_number", "trials", ["study_id", "state", "number"])
    op.create_index(
        "ix_trials_study_id_state_best_value", "trials", ["study_id", "state", "best_value"]
    )
    op.create_table(
        "results",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("trial_pk", BigId, nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
            name="fk_results_study_id_studies",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id", "trial_pk"],
            ["trials.study_id", "trials.id"],
            name="fk_results_study_id_trial_pk_trials",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "study_id", "trial_pk", "iteration", name="uq_results_study_id_trial_pk_iteration"
        ),
    )


def downgrade() -> None:
    op.drop_table("results")
    op.drop_index("ix_trials_study_id_state_best_value", table_name="trials")
    op.drop_index("ix_trials_study_id_state_number", table_name="trials")
    op.drop_index("ix_trials_study_id_best_value", table_name="trials")
    op.drop_index("ix_trials_study_id_number", table_name="trials")
    op.drop_table("trials")
    op.drop_table("studies")
