"""Every query, on SQLite and PostgreSQL: tenant scoping, the turn life cycle, feedback, pages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.db.queries import api_keys, conversations, documents, feedback, jobs, tenants, turns
from core.db.queries.conversations import ConversationFilters
from core.db.tables import ApiKey, Conversation, Turn, TurnStatus
from core.errors import InvalidInputError, NotFoundError
from core.schemas import Answer, Citation, RetrievedChunk, Timings


def _tenants(session: Session) -> None:
    tenants.create_tenant(session, tenant_id="acme", name="Acme")
    tenants.create_tenant(session, tenant_id="globex")


def _answer(text: str = "Hold the button for 10 seconds [1].", abstained: bool = False) -> Answer:
    return Answer(text=text, grounded=not abstained, abstained=abstained,
                  handoff_reason="low_retrieval_support" if abstained else None, generator="extractive",
                  question="q", standalone_query="how to reset",
                  citations=[Citation(number=1, chunk_id="c1", title="Guide", snippet="Hold the button.")],
                  retrieved=[RetrievedChunk(chunk_id="c1", score=0.9, title="Guide")],
                  timings=Timings(total_ms=12.5))


def _turn(session: Session, tenant_id: str = "acme", channel: str = "web") -> Turn:
    conversation = conversations.create_conversation(session, tenant_id=tenant_id, channel=channel, user_id="u1")
    turn_id = turns.start_turn(session, tenant_id=tenant_id, conversation_id=conversation.id, question="How to reset?")
    return turns.get_turn(session, tenant_id=tenant_id, turn_id=turn_id)


def test_tenant_ids_are_slugs_and_unique(session: Session) -> None:
    _tenants(session)
    assert [t.id for t in tenants.list_tenants(session)] == ["acme", "globex"]
    with pytest.raises(InvalidInputError, match="already exists"):
        tenants.create_tenant(session, tenant_id="acme")
    for bad in ("", "Acme", "../x", "a" * 65, "-x"):
        with pytest.raises(InvalidInputError, match="tenant id"):
            tenants.create_tenant(session, tenant_id=bad)


def test_api_keys_are_stored_hashed_and_can_be_revoked(session: Session) -> None:
    _tenants(session)
    row, key = api_keys.create_api_key(session, tenant_id="acme", admin=True, name="ops")
    assert key.startswith("sb_") and len(key) > 40
    assert row.key_hash == api_keys.hash_key(key) and key not in (row.key_hash, row.prefix)
    assert key.startswith(row.prefix)
    found = api_keys.find_active_key(session, key=key)
    assert found is not None and found.tenant_id == "acme" and found.admin
    assert api_keys.find_active_key(session, key=key + "x") is None
    with pytest.raises(NotFoundError):
        api_keys.revoke_api_key(session, prefix=row.prefix, tenant_id="globex")
    revoked = api_keys.revoke_api_key(session, prefix=row.prefix)
    assert revoked.revoked_at is not None and revoked.revoked_at.tzinfo is not None
    assert api_keys.find_active_key(session, key=key) is None
    assert [k.prefix for k in api_keys.list_api_keys(session, tenant_id="acme")] == [row.prefix]
    assert api_keys.list_api_keys(session, tenant_id="globex") == []
    with pytest.raises(NotFoundError, match="no tenant"):
        api_keys.create_api_key(session, tenant_id="nobody")


def test_a_turn_is_finished_exactly_once(session: Session) -> None:
    _tenants(session)
    turn = _turn(session)
    assert turn.status == "pending" and turn.finished_at is None
    assert turns.answer_turn(session, tenant_id="acme", turn_id=turn.id, answer=_answer(), generated_tokens=7)
    assert not turns.end_turn(session, tenant_id="acme", turn_id=turn.id, status=TurnStatus.CANCELLED, error="late")
    assert not turns.answer_turn(session, tenant_id="acme", turn_id=turn.id, answer=_answer("other"))
    stored = turns.get_turn(session, tenant_id="acme", turn_id=turn.id)
    session.refresh(stored)
    assert stored.status == "answered" and stored.answer == "Hold the button for 10 seconds [1]."
    assert stored.retrieved == [{"chunk_id": "c1", "score": 0.9, "title": "Guide"}]
    assert stored.citations[0]["chunk_id"] == "c1" and stored.latencies["total_ms"] == 12.5
    assert stored.generated_tokens == 7 and stored.grounded is True and stored.abstained is False
    assert stored.finished_at is not None and stored.finished_at >= stored.created_at


def test_failed_and_cancelled_turns_keep_the_reason(session: Session) -> None:
    _tenants(session)
    failed, cancelled = _turn(session), _turn(session)
    assert turns.end_turn(session, tenant_id="acme", turn_id=failed.id, status=TurnStatus.FAILED, error="timeout")
    assert turns.end_turn(session, tenant_id="acme", turn_id=cancelled.id, status=TurnStatus.CANCELLED, error="gone")
    assert turns.count_turns(session, tenant_id="acme", status=TurnStatus.FAILED) == 1
    assert turns.count_turns(session, tenant_id="acme", status=TurnStatus.CANCELLED) == 1
    assert turns.count_turns(session, tenant_id="acme") == 2
    with pytest.raises(ValueError, match="failed or cancelled"):
        turns.end_turn(session, tenant_id="acme", turn_id=failed.id, status=TurnStatus.ANSWERED, error="")


def test_an_abstention_hands_the_conversation_off(session: Session) -> None:
    _tenants(session)
    turn = _turn(session)
    turns.answer_turn(session, tenant_id="acme", turn_id=turn.id, answer=_answer("I don't know", abstained=True))
    conversation = conversations.get_conversation(session, tenant_id="acme", conversation_id=turn.conversation_id)
    session.refresh(conversation)
    assert conversation.handoff is True


def test_another_tenant_sees_nothing(session: Session) -> None:
    _tenants(session)
    turn = _turn(session)
    turns.answer_turn(session, tenant_id="acme", turn_id=turn.id, answer=_answer())
    with pytest.raises(NotFoundError):
        conversations.get_conversation(session, tenant_id="globex", conversation_id=turn.conversation_id)
    with pytest.raises(NotFoundError):
        turns.get_turn(session, tenant_id="globex", turn_id=turn.id)
    with pytest.raises(NotFoundError):
        feedback.save_feedback(session, tenant_id="globex", turn_id=turn.id, rating="down")
    assert not turns.answer_turn(session, tenant_id="globex", turn_id=turn.id, answer=_answer("hijack"))
    rows, total = conversations.list_conversations(session, tenant_id="globex", filters=ConversationFilters(),
                                                   limit=10, offset=0)
    assert (rows, total) == ([], 0)
    assert turns.list_turns(session, tenant_id="globex", conversation_id=turn.conversation_id) == []
    assert feedback.feedback_for_turns(session, tenant_id="acme", turn_ids=[turn.id]) == {}


def test_feedback_is_one_per_turn_and_replaced(session: Session) -> None:
    _tenants(session)
    turn = _turn(session)
    with pytest.raises(InvalidInputError, match="no answer"):
        feedback.save_feedback(session, tenant_id="acme", turn_id=turn.id, rating="up")
    turns.answer_turn(session, tenant_id="acme", turn_id=turn.id, answer=_answer())
    first = feedback.save_feedback(session, tenant_id="acme", turn_id=turn.id, rating="down", comment="wrong")
    second = feedback.save_feedback(session, tenant_id="acme", turn_id=turn.id, rating="up",
                                    corrected_answer="Hold it 10 s.", resolved=True)
    assert first.id == second.id
    stored = feedback.feedback_for_turns(session, tenant_id="acme", turn_ids=[turn.id])[turn.id]
    assert (stored.rating, stored.comment, stored.corrected_answer, stored.resolved) == ("up", None, "Hold it 10 s.", True)
    with pytest.raises(NotFoundError):
        feedback.save_feedback(session, tenant_id="acme", turn_id=uuid.uuid4(), rating="up")


def test_conversation_pages_and_filters(session: Session) -> None:
    _tenants(session)
    made = []
    for index in range(5):
        turn = _turn(session, channel="web" if index % 2 == 0 else "slack")
        turns.answer_turn(session, tenant_id="acme", turn_id=turn.id, answer=_answer(abstained=index == 4))
        made.append(turn)
    turns.start_turn(session, tenant_id="acme", conversation_id=made[0].conversation_id, question="second")
    feedback.save_feedback(session, tenant_id="acme", turn_id=made[1].id, rating="down")
    feedback.save_feedback(session, tenant_id="acme", turn_id=made[2].id, rating="up")

    def ids(**filters: object) -> list[uuid.UUID]:
        rows, _ = conversations.list_conversations(session, tenant_id="acme", filters=ConversationFilters(**filters),
                                                   limit=100, offset=0)  # type: ignore[arg-type]
        return [row.conversation.id for row in rows]

    newest_first = [t.conversation_id for t in reversed(made)]
    assert ids() == newest_first
    assert ids(channel="slack") == [made[3].conversation_id, made[1].conversation_id]
    assert ids(handoff=True) == [made[4].conversation_id]
    assert ids(rating="down") == [made[1].conversation_id]
    assert ids(rating="up") == [made[2].conversation_id]
    now = datetime.now(UTC)
    assert ids(created_after=now + timedelta(minutes=1)) == []
    assert ids(created_before=now + timedelta(minutes=1)) == newest_first
    page, total = conversations.list_conversations(session, tenant_id="acme", filters=ConversationFilters(),
                                                   limit=2, offset=2)
    assert total == 5 and [row.conversation.id for row in page] == newest_first[2:4]
    counts = {row.conversation.id: row.turns for row in conversations.list_conversations(
        session, tenant_id="acme", filters=ConversationFilters(), limit=10, offset=0)[0]}
    assert counts[made[0].conversation_id] == 2 and counts[made[1].conversation_id] == 1


def test_history_holds_the_last_answered_turns_oldest_first(session: Session) -> None:
    _tenants(session)
    first = _turn(session)
    turns.answer_turn(session, tenant_id="acme", turn_id=first.id, answer=_answer("A1"))
    for question, text in (("Q2", "A2"), ("Q3", None)):
        turn_id = turns.start_turn(session, tenant_id="acme", conversation_id=first.conversation_id, question=question)
        if text:
            turns.answer_turn(session, tenant_id="acme", turn_id=turn_id, answer=_answer(text))
    history = conversations.conversation_history(session, tenant_id="acme", conversation_id=first.conversation_id,
                                                 max_messages=4)
    assert [(m.role, m.content) for m in history] == [("user", "How to reset?"), ("assistant", "A1"),
                                                       ("user", "Q2"), ("assistant", "A2")]
    assert [m.content for m in conversations.conversation_history(
        session, tenant_id="acme", conversation_id=first.conversation_id, max_messages=2)] == ["Q2", "A2"]
    assert conversations.conversation_history(session, tenant_id="globex", conversation_id=first.conversation_id,
                                              max_messages=4) == []


def test_document_sources_are_scoped(session: Session) -> None:
    _tenants(session)
    for name in ("b.md", "a.md"):
        documents.save_document_source(session, tenant_id="acme", source=name, store_key=f"/x/{name}",
                                       content_hash="h", size_bytes=3, chunk_count=2, product="r7")
    documents.save_document_source(session, tenant_id="acme", source="a.md", store_key="/x/a.md",
                                   content_hash="h2", size_bytes=4, chunk_count=5)
    rows, total = documents.list_document_sources(session, tenant_id="acme", limit=10, offset=0)
    assert total == 2 and [(r.source, r.chunk_count, r.content_hash) for r in rows] == [("a.md", 5, "h2"),
                                                                                          ("b.md", 2, "h")]
    assert documents.list_document_sources(session, tenant_id="globex", limit=10, offset=0) == ([], 0)
    with pytest.raises(NotFoundError):
        documents.delete_document_source(session, tenant_id="globex", source="a.md")
    documents.delete_document_source(session, tenant_id="acme", source="a.md")
    with pytest.raises(NotFoundError):
        documents.get_document_source(session, tenant_id="acme", source="a.md")


def test_job_records_are_scoped_and_filtered(session: Session) -> None:
    _tenants(session)
    jobs.create_job(session, tenant_id="acme", kind="reindex", requested_by="sb_x", payload={"prune": True})
    jobs.create_job(session, tenant_id="acme", kind="train", requested_by="sb_x", payload={})
    rows, total = jobs.list_jobs(session, tenant_id="acme", limit=10, offset=0)
    assert total == 2 and {r.kind for r in rows} == {"reindex", "train"} and all(r.status == "queued" for r in rows)
    rows, total = jobs.list_jobs(session, tenant_id="acme", kind="reindex", limit=10, offset=0)
    assert total == 1 and rows[0].payload == {"prune": True}
    assert jobs.list_jobs(session, tenant_id="globex", limit=10, offset=0) == ([], 0)


def test_foreign_keys_are_enforced(session: Session) -> None:
    _tenants(session)
    session.add(Turn(tenant_id="acme", conversation_id=uuid.uuid4(), question="orphan"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.add(ApiKey(tenant_id="nobody", prefix="sb_p", key_hash="h"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_timestamps_come_back_in_utc(session: Session) -> None:
    _tenants(session)
    conversation = conversations.create_conversation(session, tenant_id="acme", channel="web")
    session.expunge_all()
    stored = session.get(Conversation, conversation.id)
    assert stored is not None and stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)
