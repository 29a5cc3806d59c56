"""The Slack app through really signed requests (HMAC computed here) to the API app, with Slack's
Web API replaced by a recording server on loopback (``slack.api_url``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import select

from bot.channels.citation_links import slack_citation, slack_escape
from bot.channels.failure_text import ATTACHMENT_ONLY_TEXT
from bot.channels.slack import ACTION_DOWN, ACTION_HANDOFF
from core.db.engine import open_session
from core.db.tables import Conversation, Feedback, Turn
from core.schemas import Citation
from tests.api.channel_doubles import Recorded, RecordingServer, recording_server
from tests.api.conftest import EMPTY_LOG, RESET_QUESTION, Api, MakeApi, conversation_log, wait_for_log
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




def test_a_retry_reaching_another_process_is_answered_once(
        shared_database: dict[str, Any], make_api: MakeApi, slack_api: RecordingServer,
        caplog: pytest.LogCaptureFixture) -> None:
    """Two apps on one database stand for two processes; a third one started later, for a restart."""
    caplog.set_level(logging.INFO, logger="bot.channels.slack")
    generator = GatedGenerator(wait_s=30)
    first = make_api(generator, slack=slack_settings(slack_api), database=shared_database)
    second = make_api(slack=slack_settings(slack_api), database=shared_database)
    event = mention(RESET_QUESTION, event_id="EvShared")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert post_event(first, event) == 200
    assert generator.started.acquire(timeout=30)  # the first process is still answering ...
    assert post_event(second, event, **retry) == 200  # ... when Slack retries at the second one
    wait_for_log(caplog, "EvShared was received before")
    generator.release.set()
    slack_api.wait_for("/api/chat.postMessage")

    restarted = make_api(slack=slack_settings(slack_api), database=shared_database)  # remembers nothing
    assert post_event(restarted, event, **{**retry, "X-Slack-Retry-Num": "2"}) == 200
    wait_for_log(caplog, "EvShared was received before", count=2)
    time.sleep(0.5)
    assert len(slack_api.calls("/api/chat.postMessage")) == 1
    [turn] = turns_of(restarted)
    assert turn.status == "answered"
    assert conversation_log(restarted) == {"Conversation": 1, "Turn": 1, "Feedback": 0}


def signed_click_body(action_id: str, value: str) -> str:
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U42"}, "api_app_id": "A1",
               "token": "legacy", "trigger_id": "1.2.3", "channel": {"id": "C1", "name": "help"},
               "message": {"type": "message", "ts": "1700000999.000100", "thread_ts": "1700000000.000100"},
               "actions": [{"type": "button", "action_id": action_id, "value": value, "action_ts": "1700001000.1"}]}
    return urlencode({"payload": json.dumps(payload)})


def test_forged_and_replayed_requests_leave_no_trace(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    body = json.dumps(mention(RESET_QUESTION, event_id="EvForged"))
    replay_stamp = int(time.time()) - 10 * 60  # a captured request sent again later: its signature is still valid
    for headers in (signed_headers(body, secret="not-the-secret"), signed_headers(body, timestamp=replay_stamp)):
        assert api.client.post("/slack/events", content=body, headers=headers).status_code == 401
    assert conversation_log(api) == EMPTY_LOG

    post_event(api, mention(RESET_QUESTION))
    slack_api.wait_for("/api/chat.postMessage")
    [turn] = turns_of(api)
    form = "application/x-www-form-urlencoded"
    for action_id, value in ((ACTION_DOWN, str(turn.id)), (ACTION_HANDOFF, str(turn.conversation_id))):
        click_body = signed_click_body(action_id, value)
        for headers in (signed_headers(click_body, secret="not-the-secret", content_type=form),
                        signed_headers(click_body, timestamp=replay_stamp, content_type=form)):
            assert api.client.post("/slack/events", content=click_body, headers=headers).status_code == 401
    time.sleep(0.5)
    assert conversation_log(api) == {"Conversation": 1, "Turn": 1, "Feedback": 0}
    with open_session(api.state.engine) as session:
        conversation = session.get(Conversation, turn.conversation_id)
        assert conversation is not None and not conversation.handoff
    assert len(slack_api.calls("/api/chat.postMessage")) == 1 and slack_api.calls("/api/chat.postEphemeral") == []


def test_an_oversized_message_gets_a_short_reply_and_stores_nothing(make_api: MakeApi,
                                                                    slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    huge = "Why does my router blink? " * 4000  # about 100 kB
    direct = {"type": "message", "channel_type": "im", "user": "U42", "text": huge, "ts": "1700000001.000100",
              "channel": "D1"}
    assert post_event(api, mention(huge, event_id="Ev1")) == 200
    assert post_event(api, {**mention("x", event_id="Ev2"), "event": direct}) == 200
    posts = slack_api.wait_for("/api/chat.postMessage", 2)
    for post in posts:
        assert "over the limit" in post.body["text"] and len(post.body["text"]) < 500
    assert {post.body["channel"] for post in posts} == {"C1", "D1"}
    assert conversation_log(api) == EMPTY_LOG


def test_files_are_not_read_but_their_message_is_answered(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    files = [{"id": "F1", "name": "router.png", "mimetype": "image/png", "filetype": "png",
              "url_private": "https://files.slack.com/files-pri/T1-F1/router.png"}]
    with_text = {**mention(RESET_QUESTION, event_id="Ev1")}
    with_text["event"] = {**with_text["event"], "files": files}
    dm_with_text = {"type": "message", "subtype": "file_share", "channel_type": "im", "user": "U42",
                    "text": RESET_QUESTION, "files": files, "ts": "1700000001.000100", "channel": "D1"}
    dm_file_only = {**dm_with_text, "text": "", "ts": "1700000002.000100", "channel": "D2"}
    mention_file_only = {**mention("", event_id="Ev4", channel="C3")}
    mention_file_only["event"] = {**mention_file_only["event"], "files": files}
    for event_id, payload in (("Ev1", with_text), ("Ev2", {**mention("x", event_id="Ev2"), "event": dm_with_text}),
                              ("Ev3", {**mention("x", event_id="Ev3"), "event": dm_file_only}),
                              ("Ev4", mention_file_only)):
        assert post_event(api, {**payload, "event_id": event_id}) == 200
    posts = {post.body["channel"]: post.body for post in slack_api.wait_for("/api/chat.postMessage", 4)}
    assert "blocks" in posts["C1"] and "blocks" in posts["D1"]  # answers
    for channel in ("D2", "C3"):
        assert posts[channel]["text"] == slack_escape(ATTACHMENT_ONLY_TEXT) and "blocks" not in posts[channel]
    assert sorted(turn.question for turn in turns_of(api)) == [RESET_QUESTION, RESET_QUESTION]


def test_unknown_events_and_actions_are_acknowledged_and_ignored(make_api: MakeApi,
                                                                 slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    events = [{"type": "reaction_added", "user": "U42", "reaction": "thumbsup", "item_user": "UBOT",
               "item": {"type": "message", "channel": "C1", "ts": "1700000999.000100"}, "event_ts": "1.1"},
              {"type": "team_join", "user": {"id": "U77"}, "event_ts": "1.2"},
              {"type": "a_future_event_type", "event_ts": "1.3"},
              {"type": "message", "subtype": "message_changed", "channel_type": "im", "channel": "D1",
               "message": {"type": "message", "user": "U42", "text": RESET_QUESTION, "ts": "1.0"}, "ts": "1.4"}]
    for number, event in enumerate(events):
        assert post_event(api, {**mention("x", event_id=f"Ev{number}"), "event": event}) == 200
    form = "application/x-www-form-urlencoded"
    click_body = signed_click_body("some_other_button", "whatever")
    assert api.client.post("/slack/events", content=click_body,
                           headers=signed_headers(click_body, content_type=form)).status_code == 200
    time.sleep(0.5)
    assert conversation_log(api) == EMPTY_LOG
    assert slack_api.calls("/api/chat.postMessage") == [] and slack_api.calls("/api/chat.postEphemeral") == []


def test_messages_from_bots_are_never_answered(make_api: MakeApi, slack_api: RecordingServer) -> None:
    api = make_api(slack=slack_settings(slack_api))
    other_bot = mention(RESET_QUESTION, event_id="Ev1")
    other_bot["event"] = {**other_bot["event"], "bot_id": "BOTHER", "user": "UOTHERBOT"}
    own_mention = mention(RESET_QUESTION, event_id="Ev2")
    own_mention["event"] = {**own_mention["event"], "user": "UBOT"}
    dm = {"type": "message", "channel_type": "im", "user": "U42", "text": RESET_QUESTION, "ts": "1700000001.000100",
          "channel": "D1"}
    bot_messages = [{**dm, "subtype": "bot_message", "bot_id": "BOTHER", "user": None},
                    {**dm, "user": "UOTHERBOT", "bot_id": "BOTHER"},
                    {**dm, "user": "UBOT"},  # this app's own reply in a direct message
                    {**dm, "user": "UBOT", "bot_id": "BBOT"}]
    payloads = [other_bot, own_mention] + [{**mention("x", event_id=f"EvB{number}"), "event": event}
                                           for number, event in enumerate(bot_messages)]
    for payload in payloads:
        assert post_event(api, payload) == 200
    assert post_event(api, mention(RESET_QUESTION, event_id="EvPerson", channel="C9")) == 200
    [post] = slack_api.wait_for("/api/chat.postMessage")
    assert post.body["channel"] == "C9"  # only the person's question
    time.sleep(0.5)
    assert len(slack_api.calls("/api/chat.postMessage")) == 1
    assert [turn.question for turn in turns_of(api)] == [RESET_QUESTION]
    assert conversation_log(api) == {"Conversation": 1, "Turn": 1, "Feedback": 0}
