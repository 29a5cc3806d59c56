"""The contract corrections in tests/doubles/rasa_contract.py are needed (the published spec rejects
what rasa_sdk itself emits) and still reject wrong types; our own action replies conform."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.rasa_actions.actions import (
    FEEDBACK_INTENT,
    MESSAGES,
    SLOT_COMMENT,
    SLOT_CONVERSATION,
    SLOT_GROUNDED,
    SLOT_HANDOFF,
    SLOT_RATING,
    SLOT_TURN,
    ActionSupportbotAnswer,
    ActionSupportbotFeedback,
    ActionSupportbotHandoff,
    answer_payload,
    answer_text,
)
from bot.rasa_actions.api_client import ChatReply
from core.schemas import Citation
from core.settings import RasaSettings
from tests.doubles.rasa_contract import RasaActionContract

RASA_PROJECT = Path(__file__).resolve().parents[2] / "bot" / "rasa"
"""The example Rasa project: domain, rules, NLU examples and endpoints.yml."""


def _dispatcher_message(**kwargs: Any) -> dict[str, Any]:
    dispatcher = CollectingDispatcher()
    dispatcher.utter_message(**kwargs)
    return dispatcher.messages[0]


def test_published_spec_rejects_rasa_sdk_events_and_messages_that_the_corrected_one_accepts() -> None:
    body = {"events": [SlotSet("supportbot_grounded", True), FollowupAction("action_supportbot_handoff")],
            "responses": [_dispatcher_message(text="Hold the reset button.", buttons=[{"title": "a", "payload": "/b"}])]}
    published = RasaActionContract.published().violations("200", body)
    assert any("timestamp" in v for v in published)
    assert any("responses/0/buttons" in v for v in published)
    assert RasaActionContract.load().violations("200", body) == []


def test_corrected_spec_still_rejects_wrong_types() -> None:
    contract = RasaActionContract.load()
    assert contract.violations("200", {"events": [{"timestamp": 1.5}]})  # an event needs its name
    assert contract.violations("200", {"events": [{"event": "slot", "timestamp": "now"}]})
    assert contract.violations("200", {"responses": [{"text": 5}]})
    assert contract.violations("200", {"responses": [{"buttons": [{"title": 1}]}]})
    assert contract.violations("200", {"responses": [{"custom": "not an object"}]})
    assert contract.violations("request", {"next_action": 5})
    assert contract.violations("request", {"tracker": {"slots": {"a": {"nested": 1}}}})
    assert contract.violations("400", {"error": 404})


def test_an_answer_message_of_our_action_conforms() -> None:
    reply = ChatReply(turn_id=uuid.uuid4(), conversation_id=uuid.uuid4(), answer="Hold reset for 10 s [1].",
                      citations=[Citation(number=1, chunk_id="c1", title="Nimbus R7 guide", heading_path=["Reset"],
                                          page=3, url="https://example.com/r7", snippet="Hold reset for 10 s.")],
                      grounded=True, abstained=False)
    action = ActionSupportbotAnswer(settings=RasaSettings())
    message = _dispatcher_message(text=answer_text(reply), buttons=action.feedback_buttons(),
                                  json_message={"supportbot": answer_payload(reply)})
    assert RasaActionContract.load().violations("200", {"events": [], "responses": [message]}) == []
    assert "[1] Nimbus R7 guide › Reset, p. 3 (https://example.com/r7)" in message["text"]


def test_the_example_domain_declares_what_the_actions_use() -> None:
    domain = yaml.safe_load((RASA_PROJECT / "domain.yml").read_text(encoding="utf-8"))
    rules = yaml.safe_load((RASA_PROJECT / "rules.yml").read_text(encoding="utf-8"))
    settings = RasaSettings()
    assert set(domain["actions"]) == {kind().name() for kind in (ActionSupportbotAnswer, ActionSupportbotFeedback,
                                                                ActionSupportbotHandoff)}
    assert settings.handoff_action in domain["actions"]
    assert {SLOT_CONVERSATION, SLOT_TURN, SLOT_GROUNDED, SLOT_HANDOFF, SLOT_RATING, SLOT_COMMENT} <= set(domain["slots"])
    assert set(domain["responses"]) <= set(MESSAGES)
    assert FEEDBACK_INTENT in domain["intents"] and SLOT_RATING in domain["entities"]
    used = {step.get("action") for rule in rules["rules"] for step in rule["steps"]} - {None}
    assert used <= set(domain["actions"])


def test_the_example_endpoints_point_at_the_action_server() -> None:
    endpoints = yaml.safe_load((RASA_PROJECT / "endpoints.yml").read_text(encoding="utf-8"))
    settings = RasaSettings()
    assert endpoints["action_endpoint"]["url"] == f"http://localhost:{settings.port}/webhook"
