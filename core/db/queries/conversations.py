"""Conversations: creation, lookup, filtered pages, and the history an answer is rewritten with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import ColumnElement, Insert, func, insert
from sqlmodel import Session, col, select

from core.db.rows import row_of, table_of
from core.db.tables import Conversation, Feedback, Turn, TurnStatus
from core.db.types import utc_now
from core.errors import NotFoundError
from core.schemas import ChatTurn


@dataclass(frozen=True)
class ConversationFilters:
    channel: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    handoff: bool | None = None
    rating: str | None = None
    """``up`` or ``down``: conversations with at least one turn rated so."""


@dataclass(frozen=True)
class ConversationSummary:
    conversation: Conversation
    turns: int


def create_conversation(session: Session, *, tenant_id: str, channel: str, user_id: str | None = None
                        ) -> Conversation:
    conversation_id = add_conversation(session, tenant_id=tenant_id, channel=channel, user_id=user_id)
    session.commit()
    conversation = session.get(Conversation, conversation_id)
    assert conversation is not None
    return conversation


def add_conversation(session: Session, *, tenant_id: str, channel: str, user_id: str | None = None) -> uuid.UUID:
    """A new conversation in the session's transaction, not yet committed; returns its id. The chat
    path commits it with its first turn, in one transaction (a refused turn leaves no empty
    conversation behind). Written with a Core statement, as the turn is (:mod:`core.db.rows`)."""
    conversation_id = uuid.uuid4()
    session.connection().execute(_insert_conversation(), row_of(Conversation, id=conversation_id, tenant_id=tenant_id,
                                                                channel=channel, user_id=user_id))
    return conversation_id


@cache
def _insert_conversation() -> Insert:
    return insert(table_of(Conversation))


def get_conversation(session: Session, *, tenant_id: str, conversation_id: uuid.UUID, channel: str | None = None
                     ) -> Conversation:
    """``channel``, when given, narrows the lookup to that channel's conversations (what a public key
    may see).

    :raises NotFoundError: no such conversation in this tenant (another tenant's, or another
        channel's when ``channel`` is given, looks the same)."""
    statement = select(Conversation).where(Conversation.id == conversation_id, Conversation.tenant_id == tenant_id)
    if channel is not None:
        statement = statement.where(Conversation.channel == channel)
    conversation = session.exec(statement).first()
    if conversation is None:
        raise NotFoundError(f"no conversation {conversation_id}")
    return conversation


def request_handoff(session: Session, *, tenant_id: str, conversation_id: uuid.UUID | None, channel: str,
                    only_channel: str | None = None) -> Conversation:
    """Mark the conversation as handed to a person (a new one on ``channel`` when ``conversation_id``
    is None). ``only_channel``, when given, limits ``conversation_id`` to that channel's conversations.

    :raises NotFoundError: no such conversation in this tenant (or in ``only_channel``).
    """
    if conversation_id is None:
        conversation = Conversation(tenant_id=tenant_id, channel=channel)
    else:
        conversation = get_conversation(session, tenant_id=tenant_id, conversation_id=conversation_id,
                                        channel=only_channel)
    conversation.handoff = True
    conversation.updated_at = utc_now()
    session.add(conversation)
    session.commit()
    return conversation


def list_conversations(session: Session, *, tenant_id: str, filters: ConversationFilters, limit: int, offset: int
                       ) -> tuple[list[ConversationSummary], int]:
    """A page of the tenant's conversations, most recently active first, and the total matching."""
    conditions: list[ColumnElement[bool]] = [col(Conversation.tenant_id) == tenant_id]
    if filters.channel is not None:
        conditions.append(col(Conversation.channel) == filters.channel)
    if filters.created_after is not None:
        conditions.append(col(Conversation.created_at) >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(col(Conversation.created_at) < filters.created_before)
    if filters.handoff is not None:
        conditions.append(col(Conversation.handoff) == filters.handoff)
    if filters.rating is not None:
        rated = (select(Turn.conversation_id).join(Feedback, col(Feedback.turn_id) == col(Turn.id))
                 .where(Feedback.tenant_id == tenant_id, Feedback.rating == filters.rating))
        conditions.append(col(Conversation.id).in_(rated))
    total = session.exec(select(func.count()).select_from(Conversation).where(*conditions)).one()
    turn_counts = (select(Turn.conversation_id, func.count().label("turns")).where(Turn.tenant_id == tenant_id)
                   .group_by(col(Turn.conversation_id)).subquery())
    statement = (select(Conversation, func.coalesce(turn_counts.c.turns, 0))
                 .outerjoin(turn_counts, turn_counts.c.conversation_id == col(Conversation.id))
                 .where(*conditions)
                 .order_by(col(Conversation.updated_at).desc(), col(Conversation.id))
                 .limit(limit).offset(offset))
    rows = [ConversationSummary(conversation=c, turns=int(n)) for c, n in session.exec(statement)]
    return rows, int(total)


def conversation_history(session: Session, *, tenant_id: str, conversation_id: uuid.UUID, max_messages: int
                         ) -> list[ChatTurn]:
    """The last ``max_messages`` user/assistant messages of the answered turns, oldest first."""
    if max_messages <= 0:
        return []
    statement = (select(Turn).where(Turn.tenant_id == tenant_id, Turn.conversation_id == conversation_id,
                                    Turn.status == TurnStatus.ANSWERED.value)
                 .order_by(col(Turn.created_at).desc()).limit((max_messages + 1) // 2))
    messages: list[ChatTurn] = []
    for turn in reversed(list(session.exec(statement))):
        messages.append(ChatTurn(role="user", content=turn.question))
        messages.append(ChatTurn(role="assistant", content=turn.answer or ""))
    return messages[-max_messages:]
