"""Totals on the study row: trial counts per state, the best trial, the best-so-far steps
and a revision counter, so reading a study never counts or ranks its trials (see models).

Existing studies get them computed from their trials here.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("pending", "running", "terminated", "error", "pruned")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("revision", sa.BigInteger(), nullable=False, server_default="0"))
        for state in STATES:
            batch.add_column(
                sa.Column(f"trials_{state}", sa.Integer(), nullable=False, server_default="0")
            )
        batch.add_column(sa.Column("best_trial_pk", BigId, nullable=True))
        batch.add_column(sa.Column("best_value", sa.Double(), nullable=True))
        batch.add_column(sa.Column("best_steps", sa.JSON(), nullable=True))
    counts = ", ".join(
        f"trials_{state} = (SELECT count(*) FROM trials WHERE trials.study_id = studies.id "
        f"AND trials.state = '{state.upper()}')"
        for state in STATES
    )
    op.execute(f"UPDATE studies SET {counts}")
    # The best trial as the store ranks it: best value for the mode, ties to the lowest id.
    best = (
        "(SELECT id FROM trials WHERE trials.study_id = studies.id "
        "AND trials.best_value IS NOT NULL ORDER BY trials.best_value {order}, trials.id "
        "LIMIT 1)"
    )
    op.execute(
        "UPDATE studies SET best_trial_pk = CASE WHEN mode = 'max' THEN "
        f"{best.format(order='DESC')} ELSE {best.format(order='ASC')} END"
    )
    op.execute(
        "UPDATE studies SET best_value = "
        "(SELECT best_value FROM trials WHERE trials.id = studies.best_trial_pk)"
    )
    _best_steps()


def _best_steps() -> None:
    """Each study's best-so-far steps from its finished trials, in the order they finished."""
    bind = op.get_bind()
    studies = bind.execute(sa.text("SELECT id, mode FROM studies")).all()
    for study_id, mode in studies:
        values = bind.execute(
            sa.text(
                "SELECT best_value FROM trials WHERE study_id = :s AND finished_at IS NOT NULL "
                "AND state IN ('TERMINATED', 'ERROR', 'PRUNED') ORDER BY finished_at, number"
            ),
            {"s": study_id},
        ).scalars()
        steps: list[list[float]] = []
        for finished, value in enumerate(values, start=1):
            if value is None:
                continue
            if not steps or (value < steps[-1][1] if mode == "min" else value > steps[-1][1]):
                steps.append([finished, value])
        if steps:
            update = sa.text("UPDATE studies SET best_steps = :steps WHERE id = :s")
            bind.execute(
                update.bindparams(sa.bindparam("steps", type_=sa.JSON())),
                {"steps": steps, "s": study_id},
            )


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("best_steps")
        batch.drop_column("best_value")
        batch.drop_column("best_trial_pk")
        for state in reversed(STATES):
            batch.drop_column(f"trials_{state}")
        batch.drop_column("revision")
