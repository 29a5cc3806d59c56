"""training opt-out: users whose conversations never become training data

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("training_opt_out",
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("user_id", sa.String(length=200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("tenant_id", "user_id")
    )


def downgrade() -> None:
    op.drop_table("training_opt_out")
