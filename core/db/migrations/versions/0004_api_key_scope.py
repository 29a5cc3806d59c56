"""api keys: a scope, "full" (every existing key) or "public" (a publishable key for the chat widget)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_key") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=16), nullable=False, server_default="full"))
    # The default only filled the existing rows (they keep what they could do); new rows get theirs
    # from the model, as elsewhere.
    with op.batch_alter_table("api_key") as batch:
        batch.alter_column("scope", server_default=None)


def downgrade() -> None:
    # Public keys would come back as full keys: revoke them rather than widen what they can do.
    op.execute(sa.text("UPDATE api_key SET revoked_at = CURRENT_TIMESTAMP "
                       "WHERE scope = 'public' AND revoked_at IS NULL"))
    with op.batch_alter_table("api_key") as batch:
        batch.drop_column("scope")
