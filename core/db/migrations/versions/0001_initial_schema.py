"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tenant",
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id")
    )
    op.create_table("api_key",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("prefix", sa.String(length=32), nullable=False),
    sa.Column("key_hash", sa.String(length=64), nullable=False),
    sa.Column("admin", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("key_hash"),
    sa.UniqueConstraint("prefix")
    )
    op.create_index(op.f("ix_api_key_tenant_id"), "api_key", ["tenant_id"], unique=False)

    op.create_table("conversation",
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("channel", sa.String(length=32), nullable=False),
    sa.Column("user_id", sa.String(length=200), nullable=True),
    sa.Column("handoff", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_conversation_tenant_updated", "conversation", ["tenant_id", "updated_at"], unique=False)

    op.create_table("document_source",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("source", sa.String(length=255), nullable=False),
    sa.Column("store_key", sa.Text(), nullable=False),
    sa.Column("product", sa.String(length=200), nullable=True),
    sa.Column("version", sa.String(length=200), nullable=True),
    sa.Column("content_hash", sa.String(length=64), nullable=False),
    sa.Column("size_bytes", sa.Integer(), nullable=False),
    sa.Column("chunk_count", sa.Integer(), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("tenant_id", "source", name="uq_document_source_tenant_source")
    )
    op.create_table("job_record",
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("requested_by", sa.String(length=64), nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id")
    )
    op.create_index(op.f("ix_job_record_status"), "job_record", ["status"], unique=False)
    op.create_index("ix_job_record_tenant_created", "job_record", ["tenant_id", "created_at"], unique=False)

    op.create_table("turn",
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("conversation_id", sa.Uuid(), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("question", sa.Text(), nullable=False),
    sa.Column("standalone_query", sa.Text(), nullable=False),
    sa.Column("retrieved", JSON, nullable=False),
    sa.Column("answer", sa.Text(), nullable=True),
    sa.Column("citations", JSON, nullable=False),
    sa.Column("generator", sa.String(length=64), nullable=True),
    sa.Column("adapter_version", sa.String(length=200), nullable=True),
    sa.Column("latencies", JSON, nullable=False),
    sa.Column("generated_tokens", sa.Integer(), nullable=True),
    sa.Column("grounded", sa.Boolean(), nullable=True),
    sa.Column("abstained", sa.Boolean(), nullable=True),
    sa.Column("handoff_reason", sa.String(length=200), nullable=True),
    sa.Column("fallback_reason", sa.Text(), nullable=True),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"], ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_turn_conversation_created", "turn", ["conversation_id", "created_at"], unique=False)
    op.create_index("ix_turn_tenant_status", "turn", ["tenant_id", "status"], unique=False)

    op.create_table("feedback",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("turn_id", sa.Uuid(), nullable=False),
    sa.Column("tenant_id", sa.String(length=64), nullable=False),
    sa.Column("rating", sa.String(length=8), nullable=False),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("corrected_answer", sa.Text(), nullable=True),
    sa.Column("resolved", sa.Boolean(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["turn_id"], ["turn.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("turn_id")
    )
    op.create_index(op.f("ix_feedback_tenant_id"), "feedback", ["tenant_id"], unique=False)



def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_tenant_id"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_turn_tenant_status", table_name="turn")
    op.drop_index("ix_turn_conversation_created", table_name="turn")
    op.drop_table("turn")
    op.drop_index("ix_job_record_tenant_created", table_name="job_record")
    op.drop_index(op.f("ix_job_record_status"), table_name="job_record")
    op.drop_table("job_record")
    op.drop_table("document_source")
    op.drop_index("ix_conversation_tenant_updated", table_name="conversation")
    op.drop_table("conversation")
    op.drop_index(op.f("ix_api_key_tenant_id"), table_name="api_key")
    op.drop_table("api_key")
    op.drop_table("tenant")
