"""The Teams bot through Bot Framework requests carrying real JWTs: an RSA key made here, the OpenID
metadata, JWKS, token endpoint and connector (``serviceUrl``) served by a recording server on loopback."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import select

from bot.channels.citation_links import markdown_citation
from bot.channels.failure_text import ATTACHMENT_ONLY_TEXT
from core.db.engine import open_session
from core.db.tables import Conversation, Feedback, Turn
from core.schemas import Citation
from tests.api.channel_doubles import Recorded, RecordingServer, recording_server
from tests.api.conftest import EMPTY_LOG, RESET_QUESTION, Api, MakeApi, conversation_log, wait_for_log
from tests.api.doubles import GatedGenerator

APP_ID = "11111111-2222-3333-4444-555555555555"
ISSUER = "https://api.botframework.com"
CONVERSATION = "a:conv-1"
ACTIVITIES = f"/v3/conversations/{CONVERSATION}/activities"
SUPPORT_CONVERSATION = "19:support@thread.tacv2"


@dataclass
class Connector:
    server: RecordingServer
    key: rsa.RSAPrivateKey

    @property
    def service_url(self) -> str:
        return f"{self.server.url}/"

    def token(self, *, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": APP_ID, "exp": now + 3600, "nbf": now - 10, "iat": now - 10,
                  "serviceUrl": self.service_url, **overrides}
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "key-1"})


def _json(payload: dict[str, Any]) -> Any:
    def respond(request: Recorded) -> tuple[int, dict[str, Any]]:
        return 200, payload
    return respond


@pytest.fixture
def connector() -> Iterator[Connector]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    with recording_server() as server:
        server.routes.update({
            "/openid": _json({"issuer": ISSUER, "jwks_uri": f"{server.url}/keys",
                              "id_token_signing_alg_values_supported": ["RS256"]}),
            "/keys": _json({"keys": [{**public, "kid": "key-1", "use": "sig", "alg": "RS256",
                                      "endorsements": ["msteams"]}]}),
            "/token": _json({"token_type": "Bearer", "expires_in": 3599, "access_token": "outbound-token"}),
            ACTIVITIES: _json({"id": "reply-1"}),
            f"/v3/conversations/{SUPPORT_CONVERSATION}/activities": _json({"id": "notice-1"}),
        })
        yield Connector(server=server, key=key)


def teams_settings(connector: Connector) -> dict[str, Any]:
    url = connector.server.url
    return {"app_id": APP_ID, "app_password": "app-secret", "tenant": "acme", "openid_metadata_url": f"{url}/openid",
            "token_url": f"{url}/token", "handoff_conversation_id": SUPPORT_CONVERSATION}


def message(connector: Connector, text: str = RESET_QUESTION, *, value: dict[str, Any] | None = None,
            service_url: str | None = None, activity_id: str = "activity-1") -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": "message", "id": activity_id, "timestamp": "2026-11-25T08:00:00.000Z", "channelId": "msteams",
        "serviceUrl": service_url or connector.service_url,
        "from": {"id": "29:user-1", "name": "Dana", "aadObjectId": "aad-user-1"},
        "conversation": {"id": CONVERSATION, "conversationType": "personal", "tenantId": "tenant-1"},
        "recipient": {"id": f"28:{APP_ID}", "name": "supportbot"},
        "text": f"<at>supportbot</at> {text}", "locale": "en-US", "channelData": {"tenant": {"id": "tenant-1"}},
        "entities": [{"type": "mention", "text": "<at>supportbot</at>", "mentioned": {"id": f"28:{APP_ID}"}}]}
    if value is not None:
        activity["value"] = value
        activity.pop("text")
    return activity


def post(api: Api, activity: dict[str, Any], token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return api.client.post("/teams/messages", content=json.dumps(activity), headers=headers).status_code


def turns_of(api: Api) -> list[Turn]:
    with open_session(api.state.engine) as session:
        return list(session.exec(select(Turn).where(Turn.tenant_id == "acme")))


def test_an_authenticated_message_is_answered_at_its_service_url(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    assert post(api, message(connector), connector.token()) == 200
    [reply] = connector.server.wait_for(ACTIVITIES)
    assert reply.headers["authorization"] == "Bearer outbound-token"
    [token_request] = connector.server.calls("/token")
    assert token_request.body["grant_type"] == "client_credentials"
    assert (token_request.body["client_id"], token_request.body["client_secret"]) == (APP_ID, "app-secret")

    [turn] = turns_of(api)
    assert turn.status == "answered" and turn.question == RESET_QUESTION  # the <at> mention is dropped
    assert reply.body["replyToId"] == "activity-1"
    assert reply.body["conversation"]["id"] == CONVERSATION
    [attachment] = reply.body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["body"][0]["text"] == turn.answer
    assert turn.citations
    assert card["body"][2]["text"] == "\n\n".join(markdown_citation(Citation(**c)) for c in turn.citations)
    data = [action["data"] for action in card["actions"]]
    assert {"action": "supportbot_feedback", "rating": "down", "turn_id": str(turn.id)} in data
    assert {"action": "supportbot_handoff", "conversation_id": str(turn.conversation_id)} in data
    with open_session(api.state.engine) as session:
        conversation = session.get(Conversation, turn.conversation_id)
        assert conversation is not None and (conversation.channel, conversation.user_id) == ("teams", "aad-user-1")


@pytest.mark.parametrize("case", ["wrong audience", "wrong issuer", "expired", "bad signature",
                                  "other service url", "no service url claim", "no token", "not a jwt"])
def test_unauthenticated_requests_are_refused(make_api: MakeApi, connector: Connector, case: str) -> None:
    api = make_api(teams=teams_settings(connector))
    activity = message(connector)
    tokens = {
        "wrong audience": lambda: connector.token(aud="someone-else"),
        "wrong issuer": lambda: connector.token(iss="https://sts.windows.net/evil/"),
        "expired": lambda: connector.token(exp=int(time.time()) - 6 * 60),
        "bad signature": lambda: connector.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "other service url": lambda: connector.token(serviceUrl="https://attacker.example/"),
        "no service url claim": lambda: connector.token(serviceUrl=None),
        "no token": lambda: None,
        "not a jwt": lambda: "abc.def.ghi",
    }
    assert post(api, activity, tokens[case]()) == 401
    time.sleep(0.3)
    assert connector.server.calls(ACTIVITIES) == []
    assert conversation_log(api) == EMPTY_LOG


def test_a_token_for_another_service_url_cannot_redirect_replies(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    activity = message(connector, service_url="http://127.0.0.1:9/")  # token says the recording server
    assert post(api, activity, connector.token()) == 401
    assert turns_of(api) == []


def test_a_key_must_be_endorsed_for_the_activity_channel(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    activity = {**message(connector), "channelId": "webchat"}  # the key endorses msteams only
    assert post(api, activity, connector.token()) == 401
    assert turns_of(api) == []


def test_expiry_within_the_clock_skew_is_accepted(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    assert post(api, message(connector), connector.token(exp=int(time.time()) - 60)) == 200
    connector.server.wait_for(ACTIVITIES)


def test_card_actions_store_feedback_and_hand_off(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    assert post(api, message(connector), connector.token()) == 200
    connector.server.wait_for(ACTIVITIES)
    [turn] = turns_of(api)
    rate = message(connector, value={"action": "supportbot_feedback", "rating": "up", "turn_id": str(turn.id)},
                   activity_id="click-1")
    assert post(api, rate, connector.token()) == 200
    thanks = connector.server.wait_for(ACTIVITIES, 2)[1]
    assert "thanks" in thanks.body["text"].lower()
    with open_session(api.state.engine) as session:
        [row] = session.exec(select(Feedback).where(Feedback.turn_id == turn.id)).all()
        assert (row.tenant_id, row.rating) == ("acme", "up")

    forged = message(connector, value={"action": "supportbot_feedback", "rating": "up", "turn_id": str(uuid.uuid4())},
                     activity_id="click-2")
    assert post(api, forged, connector.token()) == 200
    refused = connector.server.wait_for(ACTIVITIES, 3)[2]
    assert "did not work" in refused.body["text"]

    handoff = message(connector, value={"action": "supportbot_handoff", "conversation_id": str(turn.conversation_id)},
                      activity_id="click-3")
    assert post(api, handoff, connector.token()) == 200
    [notice] = connector.server.wait_for(f"/v3/conversations/{SUPPORT_CONVERSATION}/activities")
    assert "Dana asked to talk to a person" in notice.body["text"]
    assert str(turn.conversation_id) in notice.body["text"]
    connector.server.wait_for(ACTIVITIES, 4)
    with open_session(api.state.engine) as session:
        conversation = session.get(Conversation, turn.conversation_id)
        assert conversation is not None and conversation.handoff
    assert len(turns_of(api)) == 1  # card actions are not questions

    # The Bot Connector redelivers the same click: the support team is not called a second time.
    assert post(api, handoff, connector.token()) == 200
    assert post(api, message(connector, "thanks", activity_id="activity-after"), connector.token()) == 200
    connector.server.wait_for(ACTIVITIES, 5)  # the next message is answered, so the redelivery was handled
    assert len(connector.server.calls(f"/v3/conversations/{SUPPORT_CONVERSATION}/activities")) == 1


def test_teams_is_not_mounted_without_its_settings(make_api: MakeApi, connector: Connector) -> None:
    api = make_api()
    assert post(api, message(connector), connector.token()) == 404


def test_a_body_is_read_only_after_the_token_is_verified(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    garbage = api.client.post("/teams/messages", content=b"{not json", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 401
    authenticated = api.client.post("/teams/messages", content=b"{not json",
                                    headers={"Content-Type": "application/json",
                                             "Authorization": f"Bearer {connector.token()}"})
    assert authenticated.status_code == 422


def test_forged_and_expired_card_actions_leave_no_trace(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    assert post(api, message(connector), connector.token()) == 200
    connector.server.wait_for(ACTIVITIES)
    [turn] = turns_of(api)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    actions = [{"action": "supportbot_feedback", "rating": "down", "turn_id": str(turn.id)},
               {"action": "supportbot_handoff", "conversation_id": str(turn.conversation_id)}]
    for value in actions:
        for token in (connector.token(key=other_key), connector.token(exp=int(time.time()) - 10 * 60)):
            assert post(api, message(connector, value=value), token) == 401
    time.sleep(0.3)
    assert conversation_log(api) == {"Conversation": 1, "Turn": 1, "Feedback": 0}
    with open_session(api.state.engine) as session:
        conversation = session.get(Conversation, turn.conversation_id)
        assert conversation is not None and not conversation.handoff
    assert len(connector.server.calls(ACTIVITIES)) == 1


def test_an_oversized_message_gets_a_short_reply_and_stores_nothing(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    assert post(api, message(connector, "Why does my router blink? " * 4000), connector.token()) == 200  # ~100 kB
    [reply] = connector.server.wait_for(ACTIVITIES)
    assert "over the limit" in reply.body["text"] and len(reply.body["text"]) < 500
    assert conversation_log(api) == EMPTY_LOG


def test_attachments_are_not_read_but_their_message_is_answered(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    image = {"contentType": "image/png", "contentUrl": "https://smba.example/image.png", "name": "router.png"}
    with_text = {**message(connector), "attachments": [image]}
    assert post(api, with_text, connector.token()) == 200
    [answer] = connector.server.wait_for(ACTIVITIES)
    assert answer.body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    file_only = {**message(connector), "id": "activity-2", "attachments": [
        {"contentType": "application/vnd.microsoft.teams.file.download.info", "name": "log.txt",
         "content": {"downloadUrl": "https://example.sharepoint.com/log.txt", "fileType": "txt"}}]}
    file_only.pop("text")
    assert post(api, file_only, connector.token()) == 200
    reply = connector.server.wait_for(ACTIVITIES, 2)[1]
    assert reply.body["text"] == ATTACHMENT_ONLY_TEXT
    assert conversation_log(api) == {"Conversation": 1, "Turn": 1, "Feedback": 0}


@pytest.mark.parametrize("kind", ["conversationUpdate", "typing", "messageReaction", "installationUpdate",
                                  "event", "aFutureActivityType"])
def test_other_activity_types_are_acknowledged_and_ignored(make_api: MakeApi, connector: Connector, kind: str) -> None:
    api = make_api(teams=teams_settings(connector))
    activity = {**message(connector), "type": kind, "membersAdded": [{"id": "29:user-1"}],
                "reactionsAdded": [{"type": "like"}], "action": "add", "name": "some.event"}
    assert post(api, activity, connector.token()) == 200
    time.sleep(0.3)
    assert connector.server.calls(ACTIVITIES) == []
    assert conversation_log(api) == EMPTY_LOG


def test_messages_from_bots_are_never_answered(make_api: MakeApi, connector: Connector) -> None:
    api = make_api(teams=teams_settings(connector))
    other_bot = {**message(connector), "from": {"id": "28:another-bot", "name": "echo", "role": "bot"}}
    itself = {**message(connector), "id": "activity-2", "from": {"id": f"28:{APP_ID}", "name": "supportbot"}}
    for activity in (other_bot, itself):
        assert post(api, activity, connector.token()) == 200
    assert post(api, {**message(connector), "id": "activity-3"}, connector.token()) == 200  # a person
    [reply] = connector.server.wait_for(ACTIVITIES)
    assert reply.body["replyToId"] == "activity-3"
    time.sleep(0.5)
    assert len(connector.server.calls(ACTIVITIES)) == 1
    assert conversation_log(api) == {"Conversation": 1, "Turn": 1, "Feedback": 0}


def test_a_redelivered_activity_is_answered_once(shared_database: dict[str, Any], make_api: MakeApi,
                                                 connector: Connector, caplog: pytest.LogCaptureFixture) -> None:
    """Two apps on one database stand for two processes; a third one started later, for a restart."""
    caplog.set_level(logging.INFO, logger="bot.channels.teams")
    generator = GatedGenerator(wait_s=30)
    first = make_api(generator, teams=teams_settings(connector), database=shared_database)
    second = make_api(teams=teams_settings(connector), database=shared_database)
    assert post(first, message(connector), connector.token()) == 200
    assert generator.started.acquire(timeout=30)
    assert post(second, message(connector), connector.token()) == 200
    wait_for_log(caplog, "activity-1 was received before")
    generator.release.set()
    connector.server.wait_for(ACTIVITIES)
    restarted = make_api(teams=teams_settings(connector), database=shared_database)
    assert post(restarted, message(connector), connector.token()) == 200
    wait_for_log(caplog, "activity-1 was received before", count=2)
    time.sleep(0.5)
    assert len(connector.server.calls(ACTIVITIES)) == 1
    assert conversation_log(restarted) == {"Conversation": 1, "Turn": 1, "Feedback": 0}
