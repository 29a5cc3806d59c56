"""Feedback on a turn: one row per turn, replaced when feedback is posted again."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.db.queries.turns import get_turn
from core.db.tables import Feedback, TurnStatus
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
