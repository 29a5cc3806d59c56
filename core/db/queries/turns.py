"""Turns. A turn is written ``pending`` before its answer is computed and leaves ``pending`` exactly
once: the finishing updates only match a pending turn, so a late second finish changes nothing.
A turn started with a caller-derived id is started at most once: the primary key refuses the second."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache

from sqlalchemy import Insert, Update, bindparam, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from core.db.rows import row_of, table_of
from core.db.tables import Conversation, Turn, TurnStatus
from core.db.types import utc_now
from core.errors import AlreadyHandledError, NotFoundError
from core.schemas import Answer


def start_turn(session: Session, *, tenant_id: str, conversation_id: uuid.UUID, question: str,
               turn_id: uuid.UUID | None = None) -> uuid.UUID:
    """Write the pending turn of a question (and commit what the session holds, such as the new
    conversation of :func:`~core.db.queries.conversations.add_conversation`); returns its id.

    :param turn_id: an id the caller derives from something the platform repeats on every delivery
        (see :func:`core.db.queries.channel_threads.channel_event_turn_id`); by default a new one.
    :raises AlreadyHandledError: a turn with ``turn_id`` exists already: the event was delivered
        before, to this process or another one, and is being or was answered there.
    """
    new_id = turn_id or uuid.uuid4()
    try:
        session.flush()  # what the session holds goes first (the turn's conversation, say)
        session.connection().execute(_insert_turn(), row_of(Turn, id=new_id, tenant_id=tenant_id,
                                                            conversation_id=conversation_id, question=question))
        session.commit()
    except IntegrityError:
        session.rollback()
        # Only the primary key means "delivered before"; any other constraint is a real error.
        if turn_id is None or session.get(Turn, turn_id) is None:
            raise
        raise AlreadyHandledError(f"turn {turn_id} was started already; this delivery is a repeat") from None
    return new_id


def answer_turn(session: Session, *, tenant_id: str, turn_id: uuid.UUID, answer: Answer,
                generated_tokens: int | None = None, citations: list[dict[str, object]] | None = None) -> bool:
    """Record the answer; an abstention marks the conversation as handed off.

    :returns: False when the turn was no longer pending (already finished), True otherwise.
    """
    now = utc_now()
    values = {
        "status": TurnStatus.ANSWERED.value, "finished_at": now, "answer": answer.text,
        "standalone_query": answer.standalone_query,
        "retrieved": [chunk.model_dump() for chunk in answer.retrieved],
        "citations": citations if citations is not None else [c.model_dump() for c in answer.citations],
        "generator": answer.generator, "adapter_version": answer.adapter_version,
        "latencies": answer.timings.model_dump(), "grounded": answer.grounded, "abstained": answer.abstained,
        "handoff_reason": answer.handoff_reason, "fallback_reason": answer.fallback_reason,
        "generated_tokens": generated_tokens,
    }
    changed = _finish(session, tenant_id=tenant_id, turn_id=turn_id, values=values)
    if changed:
        session.connection().execute(_touch_conversation(handoff=answer.abstained),
                                     {"touch_tenant_id": tenant_id, "touch_turn_id": turn_id, "touch_at": now})
        for loaded in list(session.identity_map.values()):
            if isinstance(loaded, Conversation):
                session.expire(loaded)
    session.commit()
    return changed


def end_turn(session: Session, *, tenant_id: str, turn_id: uuid.UUID, status: TurnStatus, error: str) -> bool:
    """Mark a pending turn ``failed`` or ``cancelled`` with the reason.

    :returns: False when the turn was no longer pending.
    """
    if status not in (TurnStatus.FAILED, TurnStatus.CANCELLED):
        raise ValueError(f"end_turn takes failed or cancelled, not {status}")
    changed = _finish(session, tenant_id=tenant_id, turn_id=turn_id,
                      values={"status": status.value, "error": error[:4000], "finished_at": utc_now()})
    session.commit()
    return changed


def fail_stale_pending_turns(session: Session, *, older_than: datetime, reason: str) -> int:
    """Mark every turn still ``pending`` that was started before ``older_than`` as ``failed`` with
    ``reason`` (all tenants). Called at start-up: such a turn belonged to a process that died
    between accepting the chat and storing its answer, so nothing will ever finish it.

    :returns: how many turns were marked.
    """
    result = session.execute(update(Turn)
                             .where(col(Turn.status) == TurnStatus.PENDING.value, col(Turn.created_at) < older_than)
                             .values(status=TurnStatus.FAILED.value, error=reason[:4000], finished_at=utc_now()))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def _finish(session: Session, *, tenant_id: str, turn_id: uuid.UUID, values: dict[str, object]) -> bool:
    result = session.connection().execute(_finish_turn(tuple(values)),
                                          {**values, "finish_turn_id": turn_id, "finish_tenant_id": tenant_id})
    # Written past the session, so a turn it holds is expired to be read again.
    loaded = session.identity_map.get(identity_key(Turn, turn_id))
    if loaded is not None:
        session.expire(loaded)
    return bool(result.rowcount)


# The chat path's statements, built once and executed on the session's connection with bound
# parameters: built per call, and run through the ORM's bulk-update machinery, they cost more than
# the writes themselves (the expression building alone about 0.3 ms per answer; with literal JSON
# values SQLAlchemy also walked the documents to build the cache key).
@cache
def _insert_turn() -> Insert:
    return insert(table_of(Turn))


@cache
def _finish_turn(names: tuple[str, ...]) -> Update:
    """Finishes a turn that is still pending (a late second finish matches nothing)."""
    table = table_of(Turn)
    return (update(table)
            .where(table.c.id == bindparam("finish_turn_id"), table.c.tenant_id == bindparam("finish_tenant_id"),
                   table.c.status == TurnStatus.PENDING.value)
            .values({name: bindparam(name) for name in names}))


@cache
def _touch_conversation(*, handoff: bool) -> Update:
    """The answered turn's conversation: updated now, and handed off when the answer abstained."""
    conversations, turns = table_of(Conversation), table_of(Turn)
    values: dict[str, object] = {"updated_at": bindparam("touch_at")}
    if handoff:
        values["handoff"] = True
    return (update(conversations)
            .where(conversations.c.tenant_id == bindparam("touch_tenant_id"),
                   conversations.c.id == select(turns.c.conversation_id)
                   .where(turns.c.id == bindparam("touch_turn_id")).scalar_subquery())
            .values(values))


def get_turn(session: Session, *, tenant_id: str, turn_id: uuid.UUID) -> Turn:
    """:raises NotFoundError: no such turn in this tenant (another tenant's looks the same)."""
    turn = session.exec(select(Turn).where(Turn.id == turn_id, Turn.tenant_id == tenant_id)).first()
    if turn is None:
        raise NotFoundError(f"no turn {turn_id}")
    return turn


def list_turns(session: Session, *, tenant_id: str, conversation_id: uuid.UUID) -> list[Turn]:
    statement = (select(Turn).where(Turn.tenant_id == tenant_id, Turn.conversation_id == conversation_id)
                 .order_by(col(Turn.created_at), col(Turn.id)))
    return list(session.exec(statement))


def count_turns(session: Session, *, tenant_id: str, status: TurnStatus | None = None) -> int:
    statement = select(func.count()).select_from(Turn).where(Turn.tenant_id == tenant_id)
    if status is not None:
        statement = statement.where(Turn.status == status.value)
    return int(session.exec(statement).one())
