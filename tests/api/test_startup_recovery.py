"""Turns left ``pending`` by a crashed process are marked failed at the next start-up, with a reason
the conversation shows; a pending turn younger than the request timeout is left alone."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col

from api.app import CRASHED_TURN_REASON, create_app
from core.db.engine import open_session
from core.db.queries import conversations, turns
from core.db.tables import Turn, TurnStatus
from core.db.types import utc_now
from tests.api.conftest import MakeApi


def test_start_up_fails_turns_a_crash_left_pending(make_api: MakeApi) -> None:
    api = make_api(api={"request_timeout_s": 30})
    state = api.state
    with open_session(state.engine) as session:
        conversation = conversations.create_conversation(session, tenant_id="acme", channel="web")
        crashed_id = turns.start_turn(session, tenant_id="acme", conversation_id=conversation.id, question="crashed?")
        live_id = turns.start_turn(session, tenant_id="acme", conversation_id=conversation.id, question="still running?")
        session.execute(update(Turn).where(col(Turn.id) == crashed_id)
                        .values(created_at=utc_now() - timedelta(seconds=31)))
        session.commit()
        conversation_id = conversation.id

    restarted = create_app(state.settings, answer_service=state.service)
    with TestClient(restarted) as client:
        response = client.get(f"/v1/conversations/{conversation_id}", headers=api.headers())
    assert response.status_code == 200, response.text
    by_id = {turn["id"]: turn for turn in response.json()["turns"]}
    assert by_id[str(crashed_id)]["status"] == TurnStatus.FAILED.value
    assert by_id[str(crashed_id)]["error"] == CRASHED_TURN_REASON
    assert by_id[str(live_id)]["status"] == TurnStatus.PENDING.value
    with open_session(state.engine) as session:
        assert turns.get_turn(session, tenant_id="acme", turn_id=crashed_id).finished_at is not None
        # A second start finds nothing more to fail.
        assert turns.fail_stale_pending_turns(session, older_than=utc_now() - timedelta(seconds=30),
                                              reason="again") == 0
