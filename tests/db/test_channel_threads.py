from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.db.engine import open_session
from core.db.queries.channel_threads import channel_event_turn_id, open_thread_conversation, thread_conversation_id
from core.db.queries.tenants import create_tenant
from core.db.queries.turns import count_turns, list_turns, start_turn
from core.errors import AlreadyHandledError


def test_a_thread_keeps_one_conversation_per_tenant(session: Session) -> None:
    create_tenant(session, tenant_id="acme")
    create_tenant(session, tenant_id="globex")
    first = open_thread_conversation(session, tenant_id="acme", channel="slack", thread_key="T1/C1/1.0", user_id="U1")
    again = open_thread_conversation(session, tenant_id="acme", channel="slack", thread_key="T1/C1/1.0", user_id="U2")
    other_thread = open_thread_conversation(session, tenant_id="acme", channel="slack", thread_key="T1/C1/2.0")
    other_tenant = open_thread_conversation(session, tenant_id="globex", channel="slack", thread_key="T1/C1/1.0")
    assert first.id == again.id == thread_conversation_id(tenant_id="acme", channel="slack", thread_key="T1/C1/1.0")
    assert again.user_id == "U1"
    assert len({first.id, other_thread.id, other_tenant.id}) == 3
    assert (first.channel, other_tenant.tenant_id) == ("slack", "globex")


def test_an_event_starts_one_turn_and_a_redelivery_is_refused(engine: Engine, session: Session) -> None:
    create_tenant(session, tenant_id="acme")
    create_tenant(session, tenant_id="globex")
    conversation = open_thread_conversation(session, tenant_id="acme", channel="slack", thread_key="T1/C1/1.0")
    turn_id = channel_event_turn_id(tenant_id="acme", channel="slack", event_key="T1/Ev1")
    assert turn_id == channel_event_turn_id(tenant_id="acme", channel="slack", event_key="T1/Ev1")
    assert len({turn_id, channel_event_turn_id(tenant_id="globex", channel="slack", event_key="T1/Ev1"),
                channel_event_turn_id(tenant_id="acme", channel="teams", event_key="T1/Ev1"),
                channel_event_turn_id(tenant_id="acme", channel="slack", event_key="T1/Ev2")}) == 4
    assert start_turn(session, tenant_id="acme", conversation_id=conversation.id, question="q", turn_id=turn_id) == turn_id
    with open_session(engine) as other_process, pytest.raises(AlreadyHandledError):
        start_turn(other_process, tenant_id="acme", conversation_id=conversation.id, question="again", turn_id=turn_id)
    assert [turn.question for turn in list_turns(session, tenant_id="acme", conversation_id=conversation.id)] == ["q"]
    # turns without an event id start as before
    start_turn(session, tenant_id="acme", conversation_id=conversation.id, question="next")
    assert count_turns(session, tenant_id="acme") == 2


def test_other_integrity_errors_are_not_taken_for_a_redelivery(session: Session) -> None:
    create_tenant(session, tenant_id="acme")
    turn_id = channel_event_turn_id(tenant_id="acme", channel="slack", event_key="T1/Ev1")
    with pytest.raises(IntegrityError):  # no such conversation: a real error, not a repeat
        start_turn(session, tenant_id="acme", conversation_id=uuid.uuid4(), question="q", turn_id=turn_id)
    assert count_turns(session, tenant_id="acme") == 0
