"""Public (publishable) keys, the kind the chat widget is embedded with: anyone can read one in a
page's source, so it may only chat on the web channel, rate the tenant's turns, hand a web
conversation over and restore one by its id. Every other route answers 403 and does nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from core.db.engine import open_session
from core.db.queries.api_keys import create_api_key, revoke_api_key
from core.db.tables import ApiKey, Conversation, DocumentSource, Feedback, JobRecord, KeyScope, Turn
from core.errors import InvalidInputError
from tests.api.conftest import RESET_QUESTION, Api, MakeApi

pytestmark = pytest.mark.slow

NO_TURN = "00000000-0000-0000-0000-000000000000"
PUBLIC_REFUSAL = "public keys may only use POST /v1/chat, POST /v1/feedback, POST /v1/handoff and GET /v1/conversations/{id}"

# Every route a public key may not use, with a request that a full (admin) key gets past authorization with.
REFUSED = [
    ("GET", "/v1/conversations", {}),
    ("POST", "/v1/search", {"json": {"query": "reset"}}),
    ("POST", "/v1/documents", {"files": {"files": ("notes.md", b"# Notes\n\nHold reset for ten seconds.\n",
                                                   "text/markdown")}}),
    ("GET", "/v1/documents", {}),
    ("DELETE", "/v1/documents/notes.md", {}),
    ("POST", "/v1/assist", {"json": {"subject": "Router", "body": RESET_QUESTION}}),
    ("POST", f"/v1/assist/{NO_TURN}/sent", {"json": {"final_text": "Hold reset."}}),
    ("POST", "/v1/admin/reindex", {"json": {}}),
    ("POST", "/v1/admin/train", {"json": {}}),
    ("GET", "/v1/admin/jobs", {}),
]


def _chat(api: Api, who: str, channel: str = "web", **extra: object) -> dict[str, object]:
    response = api.client.post("/v1/chat", headers=api.headers(who), json={"message": RESET_QUESTION,
                                                                          "channel": channel, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _counts(api: Api) -> dict[str, int]:
    with open_session(api.state.engine) as session:
        return {table.__name__: len(session.exec(select(table)).all())
                for table in (Conversation, Turn, DocumentSource, JobRecord)}


@pytest.mark.parametrize(("method", "path", "request_args"), REFUSED, ids=[f"{m} {p}" for m, p, _ in REFUSED])
def test_public_key_is_refused_outside_the_widget_routes(api: Api, method: str, path: str,
                                                         request_args: dict[str, object]) -> None:
    before = _counts(api)
    refused = api.client.request(method, path, headers=api.headers("acme-public"), **request_args)  # type: ignore[arg-type]
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "forbidden" and error["message"].startswith(PUBLIC_REFUSAL)
    assert "needs a full API key" in error["message"]
    assert _counts(api) == before  # nothing was searched into, stored, queued or answered
    # The same request with a full key is authorized (whatever the route then answers).
    allowed = api.client.request(method, path, headers=api.headers("acme-admin"), **request_args)  # type: ignore[arg-type]
    assert allowed.status_code != 403, allowed.text


def test_public_key_chats_on_the_web_channel_only(api: Api) -> None:
    answer = _chat(api, "acme-public")
    assert "reset" in str(answer["answer"]).lower() and answer["citations"]
    follow_up = _chat(api, "acme-public", conversation_id=answer["conversation_id"])
    assert follow_up["conversation_id"] == answer["conversation_id"]
    for channel in ("api", "assist", "slack", "teams", "rasa"):
        refused = api.client.post("/v1/chat", headers=api.headers("acme-public"),
                                  json={"message": RESET_QUESTION, "channel": channel})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["message"] == (f"public keys may only use the 'web' channel (the chat "
                                                      f"widget's), not {channel!r}")
    with open_session(api.state.engine) as session:
        stored = session.exec(select(Conversation)).all()
    assert [(row.channel, row.tenant_id) for row in stored] == [("web", "acme")]
    assert _chat(api, "acme", channel="api")["answer"]  # full keys keep every channel


def test_public_key_continues_web_conversations_only(api: Api) -> None:
    api_conversation = _chat(api, "acme", channel="api")["conversation_id"]
    turns_before = _counts(api)["Turn"]
    hidden = api.client.post("/v1/chat", headers=api.headers("acme-public"),
                             json={"message": RESET_QUESTION, "channel": "web", "conversation_id": api_conversation})
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    assert _counts(api)["Turn"] == turns_before
    assert _chat(api, "acme", conversation_id=api_conversation)["conversation_id"] == api_conversation
    other_tenant = _chat(api, "globex")["conversation_id"]
    hijack = api.client.post("/v1/chat", headers=api.headers("acme-public"),
                             json={"message": RESET_QUESTION, "channel": "web", "conversation_id": other_tenant})
    assert hijack.status_code == 404


def test_public_key_streams_like_the_widget(api: Api) -> None:
    with api.client.stream("POST", "/v1/chat", headers=api.headers("acme-public", Accept="text/event-stream"),
                           json={"message": RESET_QUESTION, "channel": "web"}) as response:
        body = response.read().decode()
    assert response.status_code == 200 and "event: answer" in body and "event: error" not in body


def test_public_key_rates_its_tenants_turns_only(api: Api) -> None:
    answer = _chat(api, "acme-public")
    rated = api.client.post("/v1/feedback", headers=api.headers("acme-public"),
                            json={"turn_id": answer["turn_id"], "rating": "down", "comment": "too short"})
    assert rated.status_code == 200 and rated.json()["rating"] == "down"
    other = _chat(api, "globex")
    refused = api.client.post("/v1/feedback", headers=api.headers("acme-public"),
                              json={"turn_id": other["turn_id"], "rating": "up"})
    assert refused.status_code == 404
    unknown = api.client.post("/v1/feedback", headers=api.headers("acme-public"), json={"turn_id": NO_TURN,
                                                                                       "rating": "up"})
    assert unknown.status_code == 404
    # An agent's judgement becomes training data: not something a page's visitor may write.
    for extra in ({"corrected_answer": "Call 555-0100 and give your card number."}, {"resolved": True}):
        judged = api.client.post("/v1/feedback", headers=api.headers("acme-public"),
                                 json={"turn_id": answer["turn_id"], "rating": "up", **extra})
        assert judged.status_code == 403
        assert judged.json()["error"]["message"].startswith("public keys may not set corrected_answer or resolved")
    with open_session(api.state.engine) as session:
        stored = session.exec(select(Feedback).where(Feedback.turn_id == uuid.UUID(str(answer["turn_id"])))).one()
    assert (stored.rating, stored.comment, stored.corrected_answer, stored.resolved) == ("down", "too short", None, None)
    corrected = api.client.post("/v1/feedback", headers=api.headers("acme"),
                                json={"turn_id": answer["turn_id"], "rating": "down", "corrected_answer": "Hold it."})
    assert corrected.status_code == 200 and corrected.json()["corrected_answer"] == "Hold it."


def test_public_key_restores_web_conversations_only(api: Api) -> None:
    web = _chat(api, "acme-public")
    restored = api.client.get(f"/v1/conversations/{web['conversation_id']}", headers=api.headers("acme-public"))
    assert restored.status_code == 200
    assert [turn["id"] for turn in restored.json()["turns"]] == [web["turn_id"]]
    # Another channel's conversation (an agent's assist drafts, an API integration) is not the widget's:
    # to a public key it does not exist, even with its id; a full key still reads it.
    api_conversation = _chat(api, "acme", channel="api")["conversation_id"]
    hidden = api.client.get(f"/v1/conversations/{api_conversation}", headers=api.headers("acme-public"))
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    assert api.client.get(f"/v1/conversations/{api_conversation}", headers=api.headers("acme")).status_code == 200
    other_tenant = _chat(api, "globex")["conversation_id"]
    assert api.client.get(f"/v1/conversations/{other_tenant}", headers=api.headers("acme-public")).status_code == 404


def test_public_key_hands_web_conversations_over(api: Api) -> None:
    web = _chat(api, "acme-public")
    handed = api.client.post("/v1/handoff", headers=api.headers("acme-public"),
                             json={"conversation_id": web["conversation_id"]})
    assert handed.status_code == 200 and handed.json() == {"conversation_id": web["conversation_id"], "handoff": True}
    fresh = api.client.post("/v1/handoff", headers=api.headers("acme-public"), json={})
    assert fresh.status_code == 200
    with open_session(api.state.engine) as session:
        conversation = session.get(Conversation, uuid.UUID(fresh.json()["conversation_id"]))
        assert conversation is not None and (conversation.channel, conversation.handoff) == ("web", True)
    slack = api.client.post("/v1/handoff", headers=api.headers("acme-public"), json={"channel": "slack"})
    assert slack.status_code == 403 and "'web' channel" in slack.json()["error"]["message"]
    api_conversation = _chat(api, "acme", channel="api")["conversation_id"]
    hidden = api.client.post("/v1/handoff", headers=api.headers("acme-public"),
                             json={"conversation_id": api_conversation})
    assert hidden.status_code == 404
    with open_session(api.state.engine) as session:
        untouched = session.get(Conversation, uuid.UUID(str(api_conversation)))
        assert untouched is not None and untouched.handoff is False


def test_public_keys_look_different_and_are_never_admin(api: Api) -> None:
    assert api.keys["acme-public"].startswith("sbp_") and api.keys["acme"].startswith("sb_")
    assert not api.keys["acme"].startswith("sbp_")
    with open_session(api.state.engine) as session:
        with pytest.raises(InvalidInputError, match="cannot be both admin and public"):
            create_api_key(session, tenant_id="acme", admin=True, scope=KeyScope.PUBLIC)
        rows = session.exec(select(ApiKey).where(ApiKey.tenant_id == "acme")).all()
    assert sorted((row.scope, row.admin) for row in rows) == [("full", False), ("full", True), ("public", False)]


def test_revoked_public_key_is_401(make_api: MakeApi) -> None:
    api = make_api(api={"key_cache_s": 0})
    key = api.new_key("acme", public=True)
    assert api.client.get(f"/v1/conversations/{uuid.uuid4()}", headers={"X-API-Key": key}).status_code == 404
    with open_session(api.state.engine) as session:
        revoke_api_key(session, prefix=key[:12])
    response = api.client.post("/v1/chat", headers={"X-API-Key": key}, json={"message": "hi", "channel": "web"})
    assert response.status_code == 401
