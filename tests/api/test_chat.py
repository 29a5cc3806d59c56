"""POST /v1/chat as JSON and as server-sent events, and the turn record every accepted request leaves."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

import pytest
from sqlmodel import select

from core.db.engine import open_session
from core.db.tables import Conversation, Turn
from tests.api.conftest import RESET_QUESTION, Api, MakeApi
from tests.api.doubles import ExplodingGenerator, GatedGenerator, HostileGenerator

pytestmark = pytest.mark.slow


def all_turns(api: Api) -> list[Turn]:
    with open_session(api.state.engine) as session:
        return list(session.exec(select(Turn)))


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_json_answer_with_citations_and_its_turn_record(api: Api) -> None:
    response = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web", "user_id": "c-1"},
                               headers=api.headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["grounded"] is True and body["abstained"] is False and body["citations"]
    citation = body["citations"][0]
    assert citation["source"] in {"warranty.txt", "user-guide.md", "troubleshooting.html"}  # a name, not a path
    assert f"[{citation['number']}]" in body["answer"]
    (turn,) = all_turns(api)
    assert turn.id == uuid.UUID(body["turn_id"]) and turn.conversation_id == uuid.UUID(body["conversation_id"])
    assert turn.status == "answered" and turn.answer == body["answer"] and turn.tenant_id == "acme"
    assert turn.generator == "extractive" and turn.grounded is True and turn.finished_at is not None
    assert [c["chunk_id"] for c in turn.citations] == [c["chunk_id"] for c in body["citations"]]
    assert turn.retrieved and {"chunk_id", "score", "title"} <= set(turn.retrieved[0])
    assert turn.latencies["total_ms"] > 0 and turn.standalone_query


def test_follow_up_continues_the_conversation(api: Api) -> None:
    first = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"}, headers=api.headers())
    conversation_id = first.json()["conversation_id"]
    second = api.client.post("/v1/chat", json={"message": "and how long does it take?", "channel": "web",
                                               "conversation_id": conversation_id}, headers=api.headers())
    assert second.status_code == 200 and second.json()["conversation_id"] == conversation_id
    turns = sorted(all_turns(api), key=lambda t: t.created_at)
    assert [t.conversation_id for t in turns] == [uuid.UUID(conversation_id)] * 2
    assert turns[1].standalone_query != turns[1].question  # rewritten with the history


def test_event_stream_sends_tokens_then_the_answer(api: Api) -> None:
    response = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"},
                               headers=api.headers(Accept="text/event-stream"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"token"} and len(kinds) >= 2
    final = events[-1][1]
    assert {"turn_id", "conversation_id", "citations", "grounded", "abstained", "answer"} <= set(final)
    assert final["citations"] and final["grounded"] is True
    (turn,) = all_turns(api)
    assert turn.id == uuid.UUID(final["turn_id"]) and turn.status == "answered"


CANARY = "SBX-CANARY-5e0a71"


def test_event_stream_never_sends_what_the_checks_remove(make_api: MakeApi) -> None:
    generator = HostileGenerator(size=3)
    api = make_api(double=generator, answer={"canary": CANARY})
    response = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"},
                               headers=api.headers(Accept="text/event-stream"))
    assert response.status_code == 200
    events = parse_sse(response.text)
    raw = "".join(generator.pieces)
    assert CANARY in raw and "evil.example" in raw and "<script>" in raw  # the model did leak, in pieces
    assert not any(CANARY in piece for piece in generator.pieces)
    tokens = [data["text"] for kind, data in events if kind == "token"]
    streamed = "".join(tokens)
    assert tokens and [kind for kind, _ in events][-1] == "answer"
    squeezed = "".join(ch for ch in streamed.lower() if ch.isalnum())
    assert "sbxcanary5e0a71" not in squeezed
    for leak in ("evil.example", "javascript:", "<script", "![", "customer support assistant", "never reveal",
                 "status picture", "scripts run here"):  # the last two: claims no source supports, held back
        assert leak not in streamed.lower(), leak
    final = events[-1][1]
    assert final["answer"].split(" [")[0] in streamed  # the supported sentence did stream
    assert not any(leak in final["answer"].lower() for leak in ("evil.example", "javascript:", "<script"))


def test_off_topic_question_abstains_and_hands_off(api: Api) -> None:
    response = api.client.post("/v1/chat", json={"message": "What is the capital of Australia?", "channel": "slack"},
                               headers=api.headers())
    body = response.json()
    assert response.status_code == 200 and body["abstained"] is True and body["citations"] == []
    assert body["handoff_reason"]
    with open_session(api.state.engine) as session:
        conversation = session.get(Conversation, uuid.UUID(body["conversation_id"]))
    assert conversation is not None and conversation.handoff is True


def test_unknown_conversation_is_404_and_stores_nothing(api: Api) -> None:
    response = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web",
                                                 "conversation_id": str(uuid.uuid4())}, headers=api.headers())
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert all_turns(api) == []


def test_generator_crash_leaves_one_failed_turn(make_api: MakeApi) -> None:
    api = make_api(double=ExplodingGenerator())
    response = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"}, headers=api.headers())
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    streamed = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"},
                               headers=api.headers(Accept="text/event-stream"))
    assert [kind for kind, _ in parse_sse(streamed.text)] == ["error"]
    turns = all_turns(api)
    assert len(turns) == 2 and {t.status for t in turns} == {"failed"}
    assert all("the generator blew up" in (t.error or "") for t in turns)


def test_timeout_leaves_one_failed_turn(make_api: MakeApi) -> None:
    generator = GatedGenerator()
    api = make_api(double=generator, api={"request_timeout_s": 0.5})
    try:
        response = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"},
                                   headers=api.headers())
        assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"
    finally:
        generator.release.set()
    (turn,) = all_turns(api)
    assert turn.status == "failed" and "timeout" in (turn.error or "")
    assert generator.closed.wait(5)  # the worker stopped the generator


def test_client_leaving_a_stream_cancels_the_turn(make_api: MakeApi) -> None:
    generator = GatedGenerator()
    api = make_api(double=generator)
    body = json.dumps({"message": RESET_QUESTION, "channel": "web"}).encode()
    headers = [(b"content-type", b"application/json"), (b"accept", b"text/event-stream"),
               (b"authorization", f"Bearer {api.keys['acme']}".encode()), (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/chat", "raw_path": b"/v1/chat", "query_string": b"",
             "root_path": "", "headers": headers, "client": ("testclient", 1), "server": ("testserver", 80)}

    async def leave_after_first_token() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        got_token = asyncio.Event()
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop()
            await got_token.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if b"event: token" in message.get("body", b""):
                got_token.set()

        await api.app(scope, receive, send)
        return sent

    assert api.client.portal is not None
    sent = api.client.portal.call(leave_after_first_token)
    assert sent[0]["status"] == 200
    assert not any(b"event: answer" in m.get("body", b"") for m in sent)
    (turn,) = all_turns(api)
    assert turn.status == "cancelled" and "went away" in (turn.error or "")
    generator.release.set()
    assert generator.closed.wait(5)
    (turn,) = all_turns(api)
    assert turn.status == "cancelled"  # the late answer does not overwrite it


def test_every_accepted_request_leaves_exactly_one_finished_turn(api: Api) -> None:
    questions = [RESET_QUESTION, "How often does the Lumen Brew 3 ask for descaling?", "Who won the 1998 World Cup?"]
    results: list[int] = []

    def ask(question: str, stream: bool) -> None:
        headers = api.headers(Accept="text/event-stream") if stream else api.headers()
        results.append(api.client.post("/v1/chat", json={"message": question, "channel": "web"},
                                       headers=headers).status_code)

    threads = [threading.Thread(target=ask, args=(q, i % 2 == 0)) for i, q in enumerate(questions * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    refused = api.client.post("/v1/chat", json={"message": "", "channel": "web"}, headers=api.headers())
    assert refused.status_code == 422
    assert results == [200] * 6
    turns = all_turns(api)
    assert len(turns) == 6 and {t.status for t in turns} == {"answered"}


@pytest.mark.integration
def test_chat_and_conversations_on_postgresql(make_api: MakeApi) -> None:
    api = make_api(database="postgresql")
    response = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "teams"},
                               headers=api.headers())
    assert response.status_code == 200
    listed = api.client.get("/v1/conversations", headers=api.headers()).json()
    assert listed["total"] == 1 and listed["items"][0]["channel"] == "teams" and listed["items"][0]["turns"] == 1
    (turn,) = all_turns(api)
    assert turn.status == "answered" and turn.citations
