"""The database tables. Every row that belongs to a tenant carries ``tenant_id``, and every query in
:mod:`core.db.queries` filters on it.

Feedback is one row per turn: posting feedback again on the same turn replaces the earlier rating,
comment and correction (the latest judgement is the one training uses); ``updated_at`` says when.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db.types import JSONColumn, UTCDateTime, empty_dict, empty_list, utc_now


class TurnStatus(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class KeyScope(StrEnum):
    """What an API key may do. ``full``: every route of its tenant (``/v1/admin`` too when the key is
    also ``admin``). ``public``: a publishable key, meant to sit in a web page's source for the chat
    widget, so it may only use the widget's routes (see :mod:`api.deps`)."""

    FULL = "full"
    PUBLIC = "public"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Tenant(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64, description="slug: also the `tenant` label of its documents")
    name: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """Only a SHA-256 hash of the key is stored; ``prefix`` (its first characters) names it for people.
    A ``public`` key is never ``admin``."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True, max_length=64)
    name: str = Field(default="", max_length=200)
    prefix: str = Field(unique=True, max_length=32)
    key_hash: str = Field(unique=True, max_length=64)
    admin: bool = False
    scope: str = Field(default=KeyScope.FULL.value, max_length=16, description="full or public (see KeyScope)")
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Conversation(SQLModel, table=True):
    __table_args__ = (Index("ix_conversation_tenant_updated", "tenant_id", "updated_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", ondelete="CASCADE", max_length=64)
    channel: str = Field(max_length=32)
    user_id: str | None = Field(default=None, max_length=200)
    handoff: bool = Field(default=False, description="an answer was withheld and the customer handed to a person")
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Turn(SQLModel, table=True):
    """One question and its answer. Written as ``pending`` before answering, then finished exactly once."""

    __table_args__ = (Index("ix_turn_conversation_created", "conversation_id", "created_at"),
                      Index("ix_turn_tenant_status", "tenant_id", "status"))

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    conversation_id: uuid.UUID = Field(foreign_key="conversation.id", ondelete="CASCADE")
    tenant_id: str = Field(foreign_key="tenant.id", ondelete="CASCADE", max_length=64)
    question: str = Field(sa_type=Text)
    standalone_query: str = Field(default="", sa_type=Text)
    retrieved: list[dict[str, Any]] = Field(default_factory=empty_list, sa_type=JSONColumn,
                                            description="chunk_id, score, title of each retrieved chunk")
    answer: str | None = Field(default=None, sa_type=Text)
    citations: list[dict[str, Any]] = Field(default_factory=empty_list, sa_type=JSONColumn)
    generator: str | None = Field(default=None, max_length=64)
    adapter_version: str | None = Field(default=None, max_length=200)
    latencies: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSONColumn, description="Timings, in ms")
    generated_tokens: int | None = None
    grounded: bool | None = None
    abstained: bool | None = None
    handoff_reason: str | None = Field(default=None, max_length=200)
    fallback_reason: str | None = Field(default=None, sa_type=Text)
    status: str = Field(default=TurnStatus.PENDING.value, max_length=16)
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Feedback(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    turn_id: uuid.UUID = Field(foreign_key="turn.id", ondelete="CASCADE", unique=True)
    tenant_id: str = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True, max_length=64)
    rating: str = Field(max_length=8, description="up or down")
    comment: str | None = Field(default=None, sa_type=Text)
    corrected_answer: str | None = Field(default=None, sa_type=Text)
    resolved: bool | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class TrainingOptOut(SQLModel, table=True):
    """A user of a tenant who asked that their conversations never become training data. Keyed by
    the channel's ``user_id`` (the one on :class:`Conversation`), so it covers every conversation of
    that user, past and future."""

    __tablename__ = "training_opt_out"

    tenant_id: str = Field(foreign_key="tenant.id", ondelete="CASCADE", primary_key=True, max_length=64)
    user_id: str = Field(primary_key=True, max_length=200)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class DocumentSource(SQLModel, table=True):
    """A file uploaded through the API. ``source`` is its public name within the tenant;
    ``store_key`` is the ``source`` label its chunks carry in the document store."""

    __tablename__ = "document_source"
    __table_args__ = (UniqueConstraint("tenant_id", "source", name="uq_document_source_tenant_source"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", ondelete="CASCADE", max_length=64)
    source: str = Field(max_length=255)
    store_key: str = Field(sa_type=Text)
    product: str | None = Field(default=None, max_length=200)
    version: str | None = Field(default=None, max_length=200)
    content_hash: str = Field(max_length=64)
    size_bytes: int = 0
    chunk_count: int = 0
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class JobRecord(SQLModel, table=True):
    """One run of a job (re-index, train, retention): requested through the API or the CLI, or
    started by the worker's schedule (``requested_by="scheduler"``). The worker picks up ``queued``
    ones once ``not_before`` has passed; a failed run queues its retry as a new record
    (``attempt`` + 1). ``worker`` and ``lock_name`` say which lock lease a running record lives on,
    so a record whose lease expired (its worker was killed) can be marked failed."""

    __tablename__ = "job_record"
    __table_args__ = (Index("ix_job_record_tenant_created", "tenant_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", ondelete="CASCADE", max_length=64)
    kind: str = Field(max_length=32)
    status: str = Field(default=JobStatus.QUEUED.value, max_length=16, index=True)
    requested_by: str = Field(max_length=64, description="prefix of the API key that asked")
    payload: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSONColumn)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_type=Text)
    attempt: int = Field(default=1, ge=1)
    counts: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSONColumn, description="what the run did")
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime, description="retry backoff")
    worker: str | None = Field(default=None, max_length=200, description="the worker that ran it")
    lock_name: str | None = Field(default=None, max_length=200)


class JobLock(SQLModel, table=True):
    """A lease on a job name: whoever holds an unexpired row runs that job; nobody else does."""

    __tablename__ = "job_lock"

    name: str = Field(primary_key=True, max_length=200)
    owner: str = Field(max_length=200)
    acquired_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
