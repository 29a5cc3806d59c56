"""Conversations kept by a chat channel's threads (a Slack thread, a Teams conversation): the
conversation id is derived from the tenant, channel and thread key, so every message of a thread
continues the same conversation without a mapping table. Likewise the id of the turn an event starts
is derived from the platform's event id, so a redelivered event finds its turn already written."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.db.tables import Conversation
from core.errors import BackendUnavailableError

_NAMESPACE = uuid.UUID("6f1d3c2a-8a57-4f0e-9a43-52c1f4a0b7e1")
_EVENT_NAMESPACE = uuid.UUID("0b7e52c1-3f4a-4d6e-8c2b-9a1f6e3d5c70")


def thread_conversation_id(*, tenant_id: str, channel: str, thread_key: str) -> uuid.UUID:
    """The same id for the same thread, every time; different tenants never share one."""
    return uuid.uuid5(_NAMESPACE, f"{tenant_id}\x1f{channel}\x1f{thread_key}")


def channel_event_turn_id(*, tenant_id: str, channel: str, event_key: str) -> uuid.UUID:
    """The id of the turn that a channel event (a Slack ``event_id``, a Teams activity id) starts:
    the same on every delivery of the event, so :func:`core.db.queries.turns.start_turn` refuses a
    redelivery with ``AlreadyHandledError``, whichever process receives it and after restarts too
    (Slack retries an event it thinks went unanswered). Different tenants never share one.

    Usage::

        turn_id = channel_event_turn_id(tenant_id="acme", channel="slack", event_key="T1/Ev0123")
    """
    return uuid.uuid5(_EVENT_NAMESPACE, f"{tenant_id}\x1f{channel}\x1f{event_key}")


def open_thread_conversation(session: Session, *, tenant_id: str, channel: str, thread_key: str,
                             user_id: str | None = None) -> Conversation:
    """The conversation of a channel thread, created on its first message.

    Usage::

        conversation = open_thread_conversation(session, tenant_id="acme", channel="slack",
                                                thread_key="T1/C1/1700000000.000100", user_id="U1")
    """
    conversation_id = thread_conversation_id(tenant_id=tenant_id, channel=channel, thread_key=thread_key)
    for _attempt in range(2):  # a concurrent first message wins the primary key; then read its row
        existing = session.exec(select(Conversation).where(Conversation.id == conversation_id,
                                                           Conversation.tenant_id == tenant_id)).first()
        if existing is not None:
            return existing
        conversation = Conversation(id=conversation_id, tenant_id=tenant_id, channel=channel, user_id=user_id)
        session.add(conversation)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return conversation
    raise BackendUnavailableError(f"conversation {conversation_id} could not be created or read; retry")
