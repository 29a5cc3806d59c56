"""Retention: deleting a tenant's old conversations (their turns and feedback go with them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from core.db.tables import Conversation, Feedback, Turn


def delete_conversations_before(session: Session, *, tenant_id: str, before: datetime) -> dict[str, int]:
    """Delete the tenant's conversations last updated before ``before``; returns what was deleted.
    Turns and feedback are deleted explicitly rather than by ``ON DELETE CASCADE`` so the counts are
    exact and SQLite connections without ``foreign_keys=ON`` behave the same."""
    old = select(Conversation.id).where(Conversation.tenant_id == tenant_id, col(Conversation.updated_at) < before)
    old_turns = select(Turn.id).where(Turn.tenant_id == tenant_id, col(Turn.conversation_id).in_(old))
    feedback = session.exec(select(func.count()).select_from(Feedback).where(col(Feedback.turn_id).in_(old_turns))).one()
    turns = session.exec(select(func.count()).select_from(Turn).where(col(Turn.id).in_(old_turns))).one()
    session.execute(delete(Feedback).where(col(Feedback.turn_id).in_(old_turns)))
    session.execute(delete(Turn).where(col(Turn.id).in_(old_turns)))
    conversations = session.execute(delete(Conversation).where(col(Conversation.id).in_(old)))
    session.commit()
    return {"conversations": int(conversations.rowcount), "turns": int(turns),  # type: ignore[attr-defined]
            "feedback": int(feedback)}
