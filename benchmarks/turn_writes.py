"""The two writes every chat makes, timed against the same writes through the ORM in the same run.

A chat writes its turn ``pending`` (with a new conversation on the first message) before answering
and finishes it after (:mod:`core.db.queries.turns`, with Core statements built once). The
baseline writes the same rows with ORM objects and a unit-of-work flush, as the chat path did
before. Reported: p50 per write in ms, and chat-path / ORM ratios::

    python benchmarks/turn_writes.py [--rounds 300]

SQLite in a temporary directory (the default database).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from core.db.engine import build_engine, open_session
from core.db.migrate import upgrade
from core.db.queries import conversations, turns
from core.db.queries.tenants import create_tenant
from core.db.tables import Conversation, Turn, TurnStatus
from core.db.types import utc_now
from core.schemas import Answer, Citation, RetrievedChunk, Timings
from core.settings import Settings
from knowledge.evaluation.retrieval_metrics import percentile

TENANT = "bench"


def sample_answer() -> Answer:
    """An answer the size of a typical extractive one: 4 retrieved chunks, 2 citations."""
    citations = [Citation(number=n, chunk_id=f"c{n}", title="Nimbus R7 User Guide", heading_path=["Factory reset"],
                          page=n, snippet="Press and hold the recessed Reset button for 10 seconds.") for n in (1, 2)]
    return Answer(text="Press and hold the Reset button for 10 seconds [1].", grounded=True, generator="extractive",
                  question="How do I reset?", standalone_query="how do i reset the router", citations=citations,
                  retrieved=[RetrievedChunk(chunk_id=f"c{n}", score=0.9 - n / 10, title="Guide") for n in range(4)],
                  timings=Timings(retrieval_ms=6.0, total_ms=9.5))


def chat_path_start(engine: Engine) -> uuid.UUID:
    with open_session(engine) as session:
        conversation_id = conversations.add_conversation(session, tenant_id=TENANT, channel="web")
        return turns.start_turn(session, tenant_id=TENANT, conversation_id=conversation_id, question="How do I reset?")


def orm_start(engine: Engine) -> uuid.UUID:
    with open_session(engine) as session:
        conversation = Conversation(tenant_id=TENANT, channel="web")
        session.add(conversation)
        turn = Turn(tenant_id=TENANT, conversation_id=conversation.id, question="How do I reset?")
        session.add(turn)
        session.commit()
        return turn.id


def chat_path_finish(engine: Engine, turn_id: uuid.UUID, answer: Answer) -> None:
    with open_session(engine) as session:
        turns.answer_turn(session, tenant_id=TENANT, turn_id=turn_id, answer=answer, generated_tokens=0)


def orm_finish(engine: Engine, turn_id: uuid.UUID, answer: Answer) -> None:
    with open_session(engine) as session:
        turn = session.get(Turn, turn_id)
        assert turn is not None and turn.status == TurnStatus.PENDING.value
        turn.status, turn.finished_at, turn.answer = TurnStatus.ANSWERED.value, utc_now(), answer.text
        turn.retrieved = [chunk.model_dump() for chunk in answer.retrieved]
        turn.citations = [citation.model_dump() for citation in answer.citations]
        turn.latencies, turn.generator = answer.timings.model_dump(), answer.generator
        turn.grounded, turn.abstained, turn.generated_tokens = answer.grounded, answer.abstained, 0
        conversation = session.get(Conversation, turn.conversation_id)
        assert conversation is not None
        conversation.updated_at = utc_now()
        session.add_all([turn, conversation])
        session.commit()


WAYS: list[tuple[str, Callable[[Engine], uuid.UUID], Callable[[Engine, uuid.UUID, Answer], None]]] = [
    ("chat_path", chat_path_start, chat_path_finish), ("orm", orm_start, orm_finish)]


def measure(engine: Engine, rounds: int) -> dict[str, float]:
    """p50 of each write, the two ways alternated round by round so both see the same load."""
    answer = sample_answer()
    samples: dict[str, list[float]] = {"start_chat_path": [], "start_orm": [], "finish_chat_path": [],
                                       "finish_orm": []}
    for index in range(rounds + 20):  # the first 20 warm the statement caches and are not counted
        for way, start, finish in WAYS:
            started = time.perf_counter()
            turn_id = start(engine)
            between = time.perf_counter()
            finish(engine, turn_id, answer)
            if index >= 20:
                samples[f"start_{way}"].append((between - started) * 1000)
                samples[f"finish_{way}"].append((time.perf_counter() - between) * 1000)
    p50 = {name: round(percentile(values, 50), 3) for name, values in samples.items()}
    return {**{f"{name}_p50_ms": value for name, value in p50.items()},
            "start_ratio": round(p50["start_chat_path"] / p50["start_orm"], 3),
            "finish_ratio": round(p50["finish_chat_path"] / p50["finish_orm"], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="supportbot-writes-")))
    engine = build_engine(settings)
    upgrade(engine)
    with open_session(engine) as session:
        create_tenant(session, tenant_id=TENANT)
    try:
        result = {"database": engine.dialect.name, "rounds": args.rounds, **measure(engine, args.rounds)}
    finally:
        engine.dispose()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
