"""What the training data set is built from: answered turns with their conversation and feedback,
and the users who opted out of training."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.db.tables import Conversation, Feedback, TrainingOptOut, Turn, TurnStatus


@dataclass(frozen=True)
class TrainingCandidate:
    """One answered turn and what is known about how it went."""

    turn: Turn
    conversation: Conversation
    feedback: Feedback | None
    conversation_resolved: bool
    """some turn of the conversation carries feedback with ``resolved`` true"""
    opted_out: bool
    """the conversation's user asked to be left out of training"""


def set_training_opt_out(session: Session, *, tenant_id: str, user_id: str, opted_out: bool = True) -> None:
    """Record (or withdraw) a user's request to keep their conversations out of training data."""
    row = session.get(TrainingOptOut, (tenant_id, user_id))
    if opted_out and row is None:
        session.add(TrainingOptOut(tenant_id=tenant_id, user_id=user_id))
    elif not opted_out and row is not None:
        session.delete(row)
    session.commit()


def opted_out_users(session: Session, *, tenant_id: str) -> set[str]:
    statement = select(TrainingOptOut.user_id).where(TrainingOptOut.tenant_id == tenant_id)
    return set(session.exec(statement))


def training_candidates(session: Session, *, tenant_id: str, since: datetime | None = None
                        ) -> list[TrainingCandidate]:
    """Every answered turn of the tenant (created at or after ``since``), oldest first, with its
    conversation, its feedback (if any) and the opt-out and resolution flags. Choosing which of
    them become training examples is the caller's policy, so it can count what it leaves out."""
    statement = (select(Turn, Conversation, Feedback)
                 .join(Conversation, col(Conversation.id) == col(Turn.conversation_id))
                 .outerjoin(Feedback, col(Feedback.turn_id) == col(Turn.id))
                 .where(Turn.tenant_id == tenant_id, Conversation.tenant_id == tenant_id,
                        Turn.status == TurnStatus.ANSWERED.value))
    if since is not None:
        statement = statement.where(col(Turn.created_at) >= since)
    statement = statement.order_by(col(Turn.created_at), col(Turn.id))
    rows = list(session.exec(statement))
    resolved_statement = (select(Turn.conversation_id).join(Feedback, col(Feedback.turn_id) == col(Turn.id))
                          .where(Feedback.tenant_id == tenant_id, col(Feedback.resolved).is_(True)))
    resolved: set[uuid.UUID] = set(session.exec(resolved_statement))
    opted_out = opted_out_users(session, tenant_id=tenant_id)
    return [TrainingCandidate(turn=turn, conversation=conversation, feedback=feedback,
                              conversation_resolved=conversation.id in resolved,
                              opted_out=conversation.user_id is not None and conversation.user_id in opted_out)
            for turn, conversation, feedback in rows]
