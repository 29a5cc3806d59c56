"""A small logged conversation log in SQLite, built through the core.db queries, and a prompt
renderer that stands in for the answer prompt (training may not import knowledge)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from sqlmodel import Session

from core.db.queries.conversations import create_conversation
from core.db.queries.feedback import save_feedback
from core.db.queries.tenants import create_tenant
from core.db.queries.training import set_training_opt_out
from core.db.queries.turns import answer_turn, start_turn
from core.schemas import Answer, RetrievedChunk
from tests.db.conftest import db_settings, engine, session
from training.dataset import RenderedPrompt

__all__ = ["db_settings", "engine", "session"]  # the database fixtures, on SQLite and PostgreSQL

TENANT = "acme"

CHUNKS = {
    "reset": "To reset the router, hold the reset button for 10 seconds until the light blinks.",
    "wifi": "The Wi-Fi password is printed on the label under the router.",
    "update": "Firmware updates install from Settings > System > Update.",
    "ports": "Port forwarding is configured under Settings > Network > Ports.",
    "refund": "Refunds are paid to the original card within 5 working days.",
    "led": "A red LED means the router has no internet connection.",
}


def render(question: str, chunk_ids: list[str]) -> RenderedPrompt | None:
    """A short version of the answer prompt: numbered sources, then the question."""
    if any(chunk_id not in CHUNKS for chunk_id in chunk_ids):
        return None
    sources = "\n".join(f"[{n}] {CHUNKS[c]}" for n, c in enumerate(chunk_ids, start=1))
    return RenderedPrompt(messages=[{"role": "system", "content": "Answer from the sources; cite [n]."},
                                    {"role": "user", "content": f"Sources:\n{sources}\nQuestion: {question}"}],
                          sources=len(chunk_ids))


@dataclass
class ConversationLog:
    """Turn ids by what the test expects of them."""

    included: dict[str, uuid.UUID] = field(default_factory=dict)
    excluded: dict[str, uuid.UUID] = field(default_factory=dict)
    conversation_of: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)


def log_turn(session: Session, log: ConversationLog, conversation_id: uuid.UUID, question: str, answer: str,
             chunks: list[str], *, abstained: bool = False) -> uuid.UUID:
    """An answered turn of ``TENANT`` that was shown ``chunks`` (chunk ids), as the chat flow logs it."""
    turn_id = start_turn(session, tenant_id=TENANT, conversation_id=conversation_id, question=question)
    answer_turn(session, tenant_id=TENANT, turn_id=turn_id, answer=Answer(
        text=answer, grounded=not abstained, abstained=abstained, generator="local",
        handoff_reason="no_support" if abstained else None,
        retrieved=[RetrievedChunk(chunk_id=c, score=0.9, title=c) for c in chunks]))
    log.conversation_of[turn_id] = conversation_id
    return turn_id


@pytest.fixture
def conversation_log(session: Session) -> ConversationLog:
    return build_conversation_log(session)


def build_conversation_log(session: Session) -> ConversationLog:
    """Nine kept turns across seven conversations, one turn for every reason to leave one out, and
    another tenant's turn."""
    create_tenant(session, tenant_id=TENANT)
    create_tenant(session, tenant_id="other")
    log = ConversationLog()

    def conversation(user: str) -> uuid.UUID:
        return create_conversation(session, tenant_id=TENANT, channel="web", user_id=user).id

    c1 = conversation("u1")
    t = log_turn(session, log, c1, "How do I reset my router? Email me at jane.doe@example.com",
              "Hold the reset button for 10 seconds [1].", ["reset", "wifi"])
    save_feedback(session, tenant_id=TENANT, turn_id=t, rating="up")
    log.included["positive_email"] = t
    t = log_turn(session, log, c1, "Where is the Wi-Fi password?", "It is on the label under the router [2].",
              ["reset", "wifi"])
    save_feedback(session, tenant_id=TENANT, turn_id=t, rating="up")
    log.included["positive_same_conversation"] = t

    c2 = conversation("u2")
    t = log_turn(session, log, c2, "How do I update the firmware? Call me on +1 (415) 555-0132",
              "Restart it.", ["update"])
    save_feedback(session, tenant_id=TENANT, turn_id=t, rating="down",
                  corrected_answer="Open Settings > System > Update [1].")
    log.included["corrected_phone"] = t
    t = log_turn(session, log, c2, "Is port forwarding possible?", "No.", ["ports"])
    save_feedback(session, tenant_id=TENANT, turn_id=t, rating="down")
    log.excluded["negative"] = t

    c3 = conversation("u3")
    t = log_turn(session, log, c3, "Refund to card 4111 1111 1111 1111 please, I'm at 192.168.1.20",
              "Refunds go to the original card within 5 working days [1].", ["refund"])
    save_feedback(session, tenant_id=TENANT, turn_id=t, rating="up", resolved=True)
    log.included["positive_card_ip"] = t
    t = log_turn(session, log, c3, "What does the red LED mean?", "No internet connection [1].", ["led"])
    log.included["resolved_conversation"] = t

    c4 = conversation("u4")
    t = log_turn(session, log, c4, "Can I paint my router?", "I don't know.", ["led"], abstained=True)
    log.excluded["abstained"] = t
    t = log_turn(session, log, c4, "Where do I configure ports? I live at 221B Baker Street",
              "Under Settings > Network > Ports [1].", ["ports"])
    save_feedback(session, tenant_id=TENANT, turn_id=t, rating="up", resolved=True)
    log.included["positive_address"] = t
    t = log_turn(session, log, c4, "And the LED?", "Red means offline [1].", ["led"])
    log.excluded["resolved_by_a_person"] = t  # resolved, but the conversation was handed off

    c5 = conversation("private")
    set_training_opt_out(session, tenant_id=TENANT, user_id="private")
    t = log_turn(session, log, c5, "How do I reset my router?", "Hold reset [1].", ["reset"])
    save_feedback(session, tenant_id=TENANT, turn_id=t, rating="up")
    log.excluded["opted_out"] = t

    c6 = conversation("u6")
    t = log_turn(session, log, c6, "How do I reset my router? Email me at jane.doe@example.com",
              "Hold the reset button for 10 seconds [1].", ["reset", "wifi"])
    save_feedback(session, tenant_id=TENANT, turn_id=t, rating="up")
    log.excluded["duplicate"] = t
    t = log_turn(session, log, c6, "What does the LED mean?", "Red means offline [1].", ["led"])
    log.excluded["no_signal"] = t
    t = log_turn(session, log, c6, "What is in the deleted manual?", "Page 3 [1].", ["gone"])
    save_feedback(session, tenant_id=TENANT, turn_id=t, rating="up")
    log.excluded["sources_unavailable"] = t

    for user, question, answer in (("u7", "How do I update?", "Settings > System > Update [1]."),
                                   ("u8", "Wi-Fi password?", "On the label [1]."),
                                   ("u9", "Red light?", "No internet [1].")):
        chunk = {"u7": "update", "u8": "wifi", "u9": "led"}[user]
        t = log_turn(session, log, conversation(user), question, answer, [chunk])
        save_feedback(session, tenant_id=TENANT, turn_id=t, rating="up")
        log.included[f"positive_{user}"] = t

    other = create_conversation(session, tenant_id="other", channel="web", user_id="u1").id
    turn_id = start_turn(session, tenant_id="other", conversation_id=other, question="Other tenant?")
    answer_turn(session, tenant_id="other", turn_id=turn_id,
                answer=Answer(text="Yes [1].", grounded=True, generator="local"))
    save_feedback(session, tenant_id="other", turn_id=turn_id, rating="down")
    log.excluded["other_tenant"] = turn_id
    return log
