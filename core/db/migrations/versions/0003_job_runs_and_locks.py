"""worker: job run details (attempt, counts, retry time, worker) and the job_lock lease table

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("job_record") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("counts", JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("lock_name", sa.String(length=200), nullable=True))
    # The defaults only filled the existing rows; new rows get theirs from the model, as elsewhere.
    with op.batch_alter_table("job_record") as batch:
        batch.alter_column("attempt", server_default=None)
        batch.alter_column("counts", server_default=None)
    op.create_table("job_lock",
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("owner", sa.String(length=200), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("name")
    )


def downgrade() -> None:
    op.drop_table("job_lock")
    with op.batch_alter_table("job_record") as batch:
        for column in ("lock_name", "worker", "not_before", "counts", "attempt"):
            batch.drop_column(column)
