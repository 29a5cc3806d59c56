"""The Slack app through really signed requests (HMAC computed here) to the API app, with Slack's
Web API replaced by a recording server on loopback (``slack.api_url``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import select

from bot.channels.citation_links import slack_citation
from bot.channels.slack import ACTION_DOWN, ACTION_HANDOFF
from core.db.engine import open_session
from core.db.tables import Conversation, Feedback, Turn
from core.schemas import Citation
from tests.api.channel_doubles import Recorded, RecordingServer, recording_server
from tests.api.conftest import RESET_QUESTION, Api, MakeApi
from tests.api.doubles import GatedGenerator

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def signed_headers(body: str, *, secret: str = SECRET, timestamp: int | None = None,
                   content_type: str = "application/json") -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}


def _ok(extra: dict[str, Any] | None = None) -> Any:
    def respond(request: Recorded) -> tuple[int, dict[str, Any]]:
        return 200, {"ok": True, **(extra or {})}
    return respond


@pytest.fixture
def slack_api() -> Iterator[RecordingServer]:
    routes = {"/api/auth.test": _ok({"user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "supportbot"}),
              "/api/chat.postMessage": _ok({"ts": "1700000999.000100", "channel": "C1"}),
              "/api/chat.postEphemeral": _ok({"message_ts": "1700000999.000200"})}
    with recording_server(routes) as server:
        yield server


def slack_settings(server: RecordingServer, **extra: Any) -> dict[str, Any]:
    return {"signing_secret": SECRET, "bot_token": "xoxb-test-token", "tenant": "acme",
            "api_url": f"{server.url}/api/", "handoff_channel": "CSUPPORT", "handoff_usergroup": "SAGENTS", **extra}


def mention(text: str, *, event_id: str = "Ev1", ts: str = "1700000000.000100", thread_ts: str | None = None,
            channel: str = "C1") -> dict[str, Any]:
    event: dict[str, Any] = {"type": "app_mention", "user": "U42", "text": f"<@UBOT> {text}", "ts": ts,
                             "channel": channel, "event_ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {"token": "legacy", "team_id": "T1", "api_app_id": "A1", "event": event, "type": "event_callback",
            "event_id": event_id, "event_time": int(time.time()), "authorizations": [{"team_id": "T1", "user_id": "UBOT"}]}


def post_event(api: Api, payload: dict[str, Any], **headers: str) -> int:
    body = json.dumps(payload)
    return api.client.post("/slack/events", content=body, headers={**signed_headers(body), **headers}).status_code


def click(api: Api, action_id: str, value: str, message_ts: str = "1700000999.000100",
          thread_ts: str = "1700000000.000100") -> int:
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U42"}, "api_app_id": "A1",
               "token": "legacy", "trigger_id": "1.2.3", "channel": {"id": "C1", "name": "help"},
               "container": {"type": "message", "message_ts": message_ts, "channel_id": "C1"},
               "message": {"type": "message", "ts": message_ts, "thread_ts": thread_ts, "text": "answer"},
               "actions": [{"type": "button", "action_id": action_id, "block_id": "supportbot_feedback",
                            "value": value, "action_ts": "1700001000.1"}]}
    body = urlencode({"payload": json.dumps(payload)})
    return api.client.post("/slack/events", content=body,
                           headers=signed_headers(body, content_type="application/x-www-form-urlencoded")).status_code


def turns_of(api: Api) -> list[Turn]:
    with open_session(api.state.engine) as session:
        return list(session.exec(select(Turn).where(Turn.tenant_id == "acme")))


def test_url_verification_echoes_the_challenge(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    response = api.client.post("/slack/events", content=body, headers=signed_headers(body))
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_a_mention_is_answered_in_its_thread_with_linked_citations_and_buttons(
        make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    assert post_event(api, mention(RESET_QUESTION)) == 200
    post = slack_api.wait_for("/api/chat.postMessage")[0]
    assert post.headers["authorization"] == "Bearer xoxb-test-token"
    assert post.body["channel"] == "C1"
    assert post.body["thread_ts"] == "1700000000.000100"

    [turn] = turns_of(api)
    assert turn.status == "answered" and turn.question == RESET_QUESTION
    assert turn.citations, "the sample manuals answer the reset question"
    blocks = post.body["blocks"] if isinstance(post.body["blocks"], list) else json.loads(post.body["blocks"])
    sources = "\n".join(slack_citation(Citation(**c)) for c in turn.citations)
    assert blocks[1]["text"]["text"] == f"*Sources*\n{sources}"
    assert post.body["text"].endswith(sources)
    buttons = {b["action_id"]: b["value"] for b in blocks[-1]["elements"]}
    assert buttons["supportbot_feedback_up"] == buttons["supportbot_feedback_down"] == str(turn.id)
    assert buttons[ACTION_HANDOFF] == str(turn.conversation_id)
    with open_session(api.state.engine) as session:
        conversation = session.get(Conversation, turn.conversation_id)
        assert conversation is not None
        assert (conversation.channel, conversation.user_id) == ("slack", "U42")


def test_a_follow_up_in_the_thread_continues_the_conversation(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    post_event(api, mention(RESET_QUESTION, event_id="Ev1"))
    slack_api.wait_for("/api/chat.postMessage", 1)
    post_event(api, mention("and how long does it take?", event_id="Ev2", ts="1700000100.000100",
                            thread_ts="1700000000.000100"))
    slack_api.wait_for("/api/chat.postMessage", 2)
    post_event(api, mention(RESET_QUESTION, event_id="Ev3", ts="1700000200.000100", channel="C2"))
    slack_api.wait_for("/api/chat.postMessage", 3)
    by_conversation: dict[uuid.UUID, list[Turn]] = {}
    for turn in turns_of(api):
        by_conversation.setdefault(turn.conversation_id, []).append(turn)
    assert sorted(len(turns) for turns in by_conversation.values()) == [1, 2]
    follow_up = next(t for t in turns_of(api) if t.question.startswith("and how long"))
    assert "nimbus" in follow_up.standalone_query.lower()  # rewritten with the thread's history


def test_a_direct_message_is_answered_and_channel_chatter_is_not(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    chatter = {"type": "message", "channel_type": "channel", "user": "U42", "text": RESET_QUESTION,
               "ts": "1700000000.000900", "channel": "C1"}
    direct = {**chatter, "channel_type": "im", "channel": "D1", "ts": "1700000001.000100"}
    for event_id, event in (("Ev1", chatter), ("Ev2", direct)):
        assert post_event(api, {**mention("x", event_id=event_id), "event": event}) == 200
    [post] = slack_api.wait_for("/api/chat.postMessage")
    assert (post.body["channel"], post.body["thread_ts"]) == ("D1", "1700000001.000100")
    time.sleep(0.5)
    assert len(slack_api.calls("/api/chat.postMessage")) == 1
    assert len(turns_of(api)) == 1


def test_bad_signature_and_stale_timestamp_are_refused(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    body = json.dumps(mention(RESET_QUESTION))
    forged = api.client.post("/slack/events", content=body, headers=signed_headers(body, secret="not-the-secret"))
    assert forged.status_code == 401
    stale = api.client.post("/slack/events", content=body,
                            headers=signed_headers(body, timestamp=int(time.time()) - 6 * 60))
    assert stale.status_code == 401
    tampered_headers = signed_headers(body)
    tampered = api.client.post("/slack/events", content=body.replace("factory", "FACTORY"), headers=tampered_headers)
    assert tampered.status_code == 401
    unsigned = api.client.post("/slack/events", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    fresh = api.client.post("/slack/events", content=body, headers=signed_headers(body, timestamp=int(time.time()) - 60))
    assert fresh.status_code == 200  # inside the 5-minute window
    slack_api.wait_for("/api/chat.postMessage")
    assert len(turns_of(api)) == 1  # only the fresh request reached the answer service


def test_retried_events_are_answered_once(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    event = mention(RESET_QUESTION, event_id="EvRetried")
    assert post_event(api, event) == 200
    for attempt in (1, 2):
        retry = post_event(api, event, **{"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"})
        assert retry == 200
    slack_api.wait_for("/api/chat.postMessage")
    time.sleep(1.0)
    assert len(slack_api.calls("/api/chat.postMessage")) == 1
    assert len(turns_of(api)) == 1


def test_the_ack_comes_before_the_answer(make_api: MakeApi, slack_api: RecordingServer) -> None:
    generator = GatedGenerator(wait_s=30)
    api = make_api(generator, slack=slack_settings(slack_api))
    started = time.monotonic()
    assert post_event(api, mention(RESET_QUESTION)) == 200
    assert time.monotonic() - started < 3.0
    assert generator.started.acquire(timeout=30)
    assert slack_api.calls("/api/chat.postMessage") == []  # acknowledged while the answer is still being written
    generator.release.set()
    slack_api.wait_for("/api/chat.postMessage")


def test_feedback_buttons_store_feedback_like_the_api(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    post_event(api, mention(RESET_QUESTION))
    slack_api.wait_for("/api/chat.postMessage")
    [turn] = turns_of(api)
    assert click(api, ACTION_DOWN, str(turn.id)) == 200
    [thanks] = slack_api.wait_for("/api/chat.postEphemeral")
    assert (thanks.body["user"], thanks.body["channel"]) == ("U42", "C1")
    assert "thanks" in thanks.body["text"].lower()
    with open_session(api.state.engine) as session:
        [row] = session.exec(select(Feedback).where(Feedback.turn_id == turn.id)).all()
        assert (row.tenant_id, row.rating) == ("acme", "down")
    # a turn that is not the tenant's is refused, and nothing is stored
    assert click(api, ACTION_DOWN, str(uuid.uuid4())) == 200
    refused = slack_api.wait_for("/api/chat.postEphemeral", 2)[1]
    assert "could not be saved" in refused.body["text"]


def test_talk_to_a_person_posts_to_the_support_channel(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    post_event(api, mention(RESET_QUESTION))
    slack_api.wait_for("/api/chat.postMessage")
    [turn] = turns_of(api)
    assert click(api, ACTION_HANDOFF, str(turn.conversation_id)) == 200
    posts = slack_api.wait_for("/api/chat.postMessage", 3)
    notice = next(p for p in posts if p.body["channel"] == "CSUPPORT")
    assert notice.body["text"].startswith("<!subteam^SAGENTS> <@U42>")
    assert str(turn.conversation_id) in notice.body["text"]
    in_thread = next(p for p in posts[1:] if p.body["channel"] == "C1")
    assert in_thread.body["thread_ts"] == "1700000000.000100"
    with open_session(api.state.engine) as session:
        conversation = session.get(Conversation, turn.conversation_id)
        assert conversation is not None and conversation.handoff


def test_slack_is_not_mounted_without_its_settings(make_api: MakeApi) -> None:
    api = make_api()
    body = json.dumps(mention(RESET_QUESTION))
    assert api.client.post("/slack/events", content=body, headers=signed_headers(body)).status_code == 404


def test_an_empty_mention_gets_an_explanation_and_stores_nothing(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    assert post_event(api, mention("   ")) == 200
    [post] = slack_api.wait_for("/api/chat.postMessage")
    assert post.body["text"].startswith("Sorry, I can't answer that")
    assert post.body["thread_ts"] == "1700000000.000100"
    assert "blocks" not in post.body
    assert turns_of(api) == []
