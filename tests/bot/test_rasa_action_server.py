"""The Rasa action server end to end: ``supportbot actions`` (rasa_sdk's Sanic endpoint with our
actions) in a subprocess, in front of the real API (uvicorn, extractive generator, the Nimbus R7
manuals indexed). Every webhook body sent and every body received is checked against Rasa's
action-server contract (tests/contracts/rasa-action-server.yml + rasa.yml)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from knowledge.document_store import build_document_store
from knowledge.indexing import Indexer, SourceMeta
from tests.api.live_server import LiveApi, serve_api
from tests.bot.rasa_servers import DOMAIN, action_call, free_port, serve_actions
from tests.conftest import SAMPLES
from tests.doubles.rasa_contract import RasaActionContract

RESET_QUESTION = "How do I factory reset the Nimbus R7 router?"
OFF_TOPIC = "What is the capital of Australia?"
CONTRACT = RasaActionContract.load()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    data_dir = tmp_path_factory.mktemp("rasa-api") / "data"
    summary = Indexer(Settings(data_dir=data_dir), build_document_store(Settings(data_dir=data_dir))).ingest(
        [str(SAMPLES / "nimbus-r7")], SourceMeta(tenant="acme", product="nimbus-r7"))
    assert not summary.failed, summary.failed
    with serve_api(data_dir) as api:
        yield api


@pytest.fixture(scope="module")
def actions(live: LiveApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_actions(api_url=live.url, api_key=live.keys["acme"], workdir=tmp_path_factory.mktemp("actions")) as url:
        yield url


@pytest.fixture(scope="module")
def actions_api_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_actions(api_url=f"http://127.0.0.1:{free_port()}", api_key="sk-nobody",
                       workdir=tmp_path_factory.mktemp("actions-down"), timeout_s="3") as url:
        yield url


def call(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a contract-valid body; assert a contract-valid 200 and return it."""
    assert CONTRACT.violations("request", body) == []
    response = httpx.post(f"{url}/webhook", json=body, timeout=120)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    assert CONTRACT.violations("200", reply) == []
    return reply


def slots(reply: dict[str, Any]) -> dict[str, Any]:
    return {event["name"]: event["value"] for event in reply["events"] if event["event"] == "slot"}


def followups(reply: dict[str, Any]) -> list[str]:
    return [event["name"] for event in reply["events"] if event["event"] == "followup"]


def conversation(live: LiveApi, conversation_id: str) -> dict[str, Any]:
    response = httpx.get(f"{live.url}/v1/conversations/{conversation_id}",
                         headers={"Authorization": f"Bearer {live.keys['acme']}"}, timeout=30)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def test_answer_carries_citations_and_its_turn_is_stored_with_channel_rasa(live: LiveApi, actions: str) -> None:
    reply = call(actions, action_call("action_supportbot_answer", sender="rasa-user-1", text=RESET_QUESTION))
    [message] = reply["responses"]
    payload = message["custom"]["supportbot"]
    assert payload["grounded"] is True and payload["abstained"] is False and payload["citations"]
    assert all(c["snippet"] and c["title"] for c in payload["citations"])
    assert "Sources:\n[1] " in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ['/supportbot_feedback{"supportbot_rating":"up"}',
                                                           '/supportbot_feedback{"supportbot_rating":"down"}']
    values = slots(reply)
    assert values["supportbot_grounded"] is True and followups(reply) == []
    assert values["supportbot_turn_id"] == payload["turn_id"]
    stored = conversation(live, values["supportbot_conversation_id"])
    assert stored["channel"] == "rasa" and stored["user_id"] == "rasa-user-1" and stored["handoff"] is False
    [turn] = stored["turns"]
    assert turn["id"] == values["supportbot_turn_id"] and turn["status"] == "answered"
    assert turn["question"] == RESET_QUESTION and turn["answer"] in message["text"]


def test_follow_up_continues_the_stored_conversation_and_a_stale_id_starts_a_new_one(
        live: LiveApi, actions: str) -> None:
    first = slots(call(actions, action_call("action_supportbot_answer", sender="rasa-user-2", text=RESET_QUESTION)))
    conversation_id = first["supportbot_conversation_id"]
    second = slots(call(actions, action_call("action_supportbot_answer", sender="rasa-user-2",
                                             text="and how long do I hold the button?",
                                             slots={"supportbot_conversation_id": conversation_id})))
    assert second["supportbot_conversation_id"] == conversation_id
    assert len(conversation(live, conversation_id)["turns"]) == 2
    stale = str(uuid.uuid4())
    third = slots(call(actions, action_call("action_supportbot_answer", sender="rasa-user-2", text=RESET_QUESTION,
                                            slots={"supportbot_conversation_id": stale})))
    assert third["supportbot_conversation_id"] not in (stale, conversation_id)
    assert conversation(live, third["supportbot_conversation_id"])["channel"] == "rasa"


def test_feedback_from_slot_or_button_entity_lands_on_the_turn(live: LiveApi, actions: str) -> None:
    answered = slots(call(actions, action_call("action_supportbot_answer", sender="rasa-user-3", text=RESET_QUESTION)))
    ids = {"supportbot_conversation_id": answered["supportbot_conversation_id"],
           "supportbot_turn_id": answered["supportbot_turn_id"]}
    reply = call(actions, action_call("action_supportbot_feedback", sender="rasa-user-3", intent="supportbot_feedback",
                                      slots=ids | {"supportbot_rating": "down",
                                                   "supportbot_feedback_comment": "wrong model"}))
    assert reply["responses"][0]["text"] == "Thanks for your feedback!"
    assert slots(reply) == {"supportbot_rating": None, "supportbot_feedback_comment": None}
    [turn] = conversation(live, ids["supportbot_conversation_id"])["turns"]
    assert turn["feedback"]["rating"] == "down" and turn["feedback"]["comment"] == "wrong model"

    entity = [{"entity": "supportbot_rating", "value": "up", "start": 21, "end": 23}]
    call(actions, action_call("action_supportbot_feedback", sender="rasa-user-3", intent="supportbot_feedback",
                              text='/supportbot_feedback{"supportbot_rating":"up"}', entities=entity, slots=ids))
    [turn] = conversation(live, ids["supportbot_conversation_id"])["turns"]
    assert turn["feedback"]["rating"] == "up" and turn["feedback"]["comment"] is None


def test_feedback_without_an_answer_or_rating_asks_instead_of_posting(actions: str) -> None:
    no_turn = call(actions, action_call("action_supportbot_feedback", sender="rasa-user-4",
                                        slots={"supportbot_rating": "up"}))
    assert no_turn["responses"][0]["text"] == "There is no answer of mine to rate yet."
    unknown_turn = call(actions, action_call("action_supportbot_feedback", sender="rasa-user-4",
                                             slots={"supportbot_turn_id": str(uuid.uuid4()), "supportbot_rating": "up"}))
    assert unknown_turn["responses"][0]["text"] == "There is no answer of mine to rate yet."
    no_rating = call(actions, action_call("action_supportbot_feedback", sender="rasa-user-4",
                                          slots={"supportbot_turn_id": str(uuid.uuid4())}))
    assert no_rating["responses"][0]["text"] == "Was this answer helpful?"
    assert len(no_rating["responses"][0]["buttons"]) == 2


def test_abstention_schedules_the_handoff_action_which_marks_the_conversation(live: LiveApi, actions: str) -> None:
    reply = call(actions, action_call("action_supportbot_answer", sender="rasa-user-5", text=OFF_TOPIC))
    [message] = reply["responses"]
    assert message["custom"]["supportbot"]["abstained"] is True and message["buttons"] == []
    values = slots(reply)
    assert values["supportbot_handoff"] is True and followups(reply) == ["action_supportbot_handoff"]

    handed = call(actions, action_call("action_supportbot_handoff", sender="rasa-user-5", text=OFF_TOPIC,
                                       slots={"supportbot_conversation_id": values["supportbot_conversation_id"]}))
    assert "support team" in handed["responses"][0]["text"]
    assert slots(handed)["supportbot_handoff"] is True
    assert conversation(live, values["supportbot_conversation_id"])["handoff"] is True


def test_handoff_without_a_conversation_creates_one_already_handed_over(live: LiveApi, actions: str) -> None:
    handed = slots(call(actions, action_call("action_supportbot_handoff", sender="rasa-user-6", text="a person please")))
    stored = conversation(live, handed["supportbot_conversation_id"])
    assert stored["handoff"] is True and stored["channel"] == "rasa"


def test_api_down_gives_a_polite_message_and_a_handoff_not_an_error(actions_api_down: str) -> None:
    reply = call(actions_api_down, action_call("action_supportbot_answer", sender="rasa-user-7", text=RESET_QUESTION))
    assert [m["text"] for m in reply["responses"]] == ["Sorry, I can't look that up right now."]
    assert slots(reply) == {"supportbot_handoff": True} and followups(reply) == ["action_supportbot_handoff"]

    handed = call(actions_api_down, action_call("action_supportbot_handoff", sender="rasa-user-7"))
    assert "support team" in handed["responses"][0]["text"] and slots(handed) == {"supportbot_handoff": True}

    rated = call(actions_api_down, action_call("action_supportbot_feedback", sender="rasa-user-7", slots={
        "supportbot_turn_id": str(uuid.uuid4()), "supportbot_rating": "up"}))
    assert rated["responses"][0]["text"] == "Thanks! I couldn't save your rating just now, sorry."


def test_domain_responses_override_the_built_in_texts(actions_api_down: str) -> None:
    domain = DOMAIN | {"responses": {"utter_supportbot_unavailable": [{"text": "Our help centre is offline."}]}}
    reply = call(actions_api_down, action_call("action_supportbot_answer", sender="rasa-user-8", text=RESET_QUESTION,
                                               domain=domain))
    assert reply["responses"][0]["response"] == "utter_supportbot_unavailable"
    assert reply["responses"][0]["text"] is None


def test_unknown_action_is_404_in_the_rejection_shape(actions: str) -> None:
    body = action_call("action_does_not_exist", sender="rasa-user-9", text="hi")
    assert CONTRACT.violations("request", body) == []
    response = httpx.post(f"{actions}/webhook", json=body, timeout=30)
    # The contract lists no 404; rasa_sdk answers it with the body of the 400 rejection, which Rasa reads.
    assert response.status_code == 404
    assert CONTRACT.violations("400", response.json()) == []
    assert response.json()["action_name"] == "action_does_not_exist"


@pytest.mark.parametrize("content", [
    b"not json",
    b"[1, 2]",
    b'{"next_action": 5, "tracker": {"sender_id": "u"}}',
    b'{"next_action": "action_supportbot_answer"}',
    b'{"next_action": "action_supportbot_answer", "tracker": {"sender_id": "u"}, "domain": "nope"}',
])
def test_malformed_bodies_are_400_in_the_rejection_shape(actions: str, content: bytes) -> None:
    response = httpx.post(f"{actions}/webhook", content=content, headers={"Content-Type": "application/json"},
                          timeout=30)
    assert response.status_code == 400, response.text
    assert CONTRACT.violations("400", response.json()) == [] and response.json()["error"]


def test_the_cli_refuses_to_start_without_an_api_key(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SUPPORTBOT_RASA__")}
    done = subprocess.run([str(Path(sys.executable).with_name("supportbot")), "actions", "--port", str(free_port())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "rasa.api_key" in done.stderr
