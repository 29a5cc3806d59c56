"""Feedback on a turn: one row per turn, replaced when feedback is posted again."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from core.db.queries.turns import get_turn
from core.db.tables import Feedback, Turn, TurnStatus
from core.db.types import utc_now
from core.errors import InvalidInputError


def save_feedback(session: Session, *, tenant_id: str, turn_id: uuid.UUID, rating: str, comment: str | None = None,
                  corrected_answer: str | None = None, resolved: bool | None = None) -> Feedback:
    """Create or replace the feedback of one of the tenant's answered turns.

    :raises NotFoundError: no such turn in this tenant.
    :raises InvalidInputError: the turn has no answer to judge.
    """
    turn = get_turn(session, tenant_id=tenant_id, turn_id=turn_id)
    if turn.status != TurnStatus.ANSWERED.value:
        raise InvalidInputError(f"turn {turn_id} has no answer to rate (status {turn.status})")
    for _attempt in range(2):  # a concurrent first insert wins the unique constraint; then update it
        row = session.exec(select(Feedback).where(Feedback.turn_id == turn_id, Feedback.tenant_id == tenant_id)).first()
        if row is None:
            row = Feedback(turn_id=turn_id, tenant_id=tenant_id, rating=rating)
        row.rating, row.comment, row.corrected_answer, row.resolved = rating, comment, corrected_answer, resolved
        row.updated_at = utc_now()
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return row
    raise InvalidInputError(f"feedback on turn {turn_id} is being written concurrently; retry")


def feedback_for_turns(session: Session, *, tenant_id: str, turn_ids: list[uuid.UUID]) -> dict[uuid.UUID, Feedback]:
    if not turn_ids:
        return {}
    statement = select(Feedback).where(Feedback.tenant_id == tenant_id, col(Feedback.turn_id).in_(turn_ids))
    return {row.turn_id: row for row in session.exec(statement)}


def record_sent_reply(session: Session, *, tenant_id: str, turn_id: uuid.UUID, final_text: str) -> Feedback:
    """Store the reply an agent sent (after editing the drafted answer) as the turn's corrected
    answer. An earlier rating is kept; without one, an unchanged draft counts as ``up`` and an
    edited one as ``down``.

    :raises NotFoundError: no such turn in this tenant.
    :raises InvalidInputError: the turn has no answer.
    """
    turn = get_turn(session, tenant_id=tenant_id, turn_id=turn_id)
    earlier = session.exec(select(Feedback).where(Feedback.turn_id == turn_id, Feedback.tenant_id == tenant_id)).first()
    unchanged = " ".join(final_text.split()) == " ".join((turn.answer or "").split())
    rating = earlier.rating if earlier is not None else ("up" if unchanged else "down")
    return save_feedback(session, tenant_id=tenant_id, turn_id=turn_id, rating=rating,
                         comment=earlier.comment if earlier else None, corrected_answer=final_text,
                         resolved=earlier.resolved if earlier else None)


def well_received_turns(session: Session, *, tenant_id: str, limit: int = 2000) -> list[tuple[Turn, Feedback]]:
    """The tenant's answered turns rated up or marked resolved, newest first: the past conversations
    an agent may learn from."""
    statement = (select(Turn, Feedback).join(Feedback, col(Feedback.turn_id) == col(Turn.id))
                 .where(Turn.tenant_id == tenant_id, Feedback.tenant_id == tenant_id,
                        Turn.status == TurnStatus.ANSWERED.value,
                        or_(col(Feedback.rating) == "up", col(Feedback.resolved).is_(True)))
                 .order_by(col(Turn.created_at).desc()).limit(limit))
    return [(turn, row) for turn, row in session.exec(statement)]
