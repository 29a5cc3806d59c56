"""The actions run directly (no server) against an API double (httpx.MockTransport) whose replies are
validated against the API's own response models: the settings-dependent branches, and the package
loading that ``rasa run actions --actions bot.rasa_actions`` does."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from pydantic import SecretStr
from rasa_sdk import Tracker
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher

from api.schemas import ChatResponse
from bot.rasa_actions.actions import ActionSupportbotAnswer
from bot.rasa_actions.api_client import SupportbotApiClient
from core.settings import RasaSettings


def _abstaining_chat(request: httpx.Request) -> httpx.Response:
    body = ChatResponse.model_validate({
        "turn_id": str(uuid.uuid4()), "conversation_id": str(uuid.uuid4()), "citations": [],
        "answer": "I don't know; let me hand you to a person.", "grounded": False, "abstained": True,
        "handoff_reason": "no source supports an answer", "generator": "extractive", "timings": {}})
    assert json.loads(request.content)["channel"] == "rasa"
    return httpx.Response(200, json=body.model_dump(mode="json"))


def _overloaded(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"error": {"code": "overloaded", "message": "busy"}}, headers={"Retry-After": "2"})


def _run_answer(handler: Any, settings: RasaSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    client = SupportbotApiClient("http://api.test", SecretStr("sk"), transport=httpx.MockTransport(handler))
    action = ActionSupportbotAnswer(client, settings)
    tracker = Tracker.from_dict({"sender_id": "u-1", "latest_message": {"text": "What is the capital of Australia?"}})
    dispatcher = CollectingDispatcher()

    async def go() -> list[dict[str, Any]]:
        try:
            return await action.run(dispatcher, tracker, {})
        finally:
            await client.aclose()

    return asyncio.run(go()), dispatcher.messages


def test_without_a_handoff_action_the_answer_action_says_it_hands_over_itself() -> None:
    events, messages = _run_answer(_overloaded, RasaSettings(handoff_action=""))
    assert [m["text"] for m in messages] == ["Sorry, I can't look that up right now.",
                                             "I'm handing you over to a person from our support team; "
                                             "they will see this conversation."]
    assert [e["event"] for e in events] == ["slot"] and events[0]["name"] == "supportbot_handoff"


def test_abstention_follows_up_with_the_configured_handoff_action() -> None:
    events, messages = _run_answer(_abstaining_chat, RasaSettings(handoff_action="action_my_handoff"))
    assert messages[0]["text"].startswith("I don't know") and messages[0]["buttons"] == []
    assert {"event": "followup", "timestamp": None, "name": "action_my_handoff"} in events
    assert {"event": "slot", "timestamp": None, "name": "supportbot_grounded", "value": False} in events


def test_feedback_buttons_can_be_turned_off() -> None:
    assert ActionSupportbotAnswer(settings=RasaSettings(feedback_buttons=False)).feedback_buttons() == []


def test_rasa_sdk_loads_the_package_as_rasa_run_actions_does() -> None:
    executor = ActionExecutor()
    executor.register_package("bot.rasa_actions")
    assert {"action_supportbot_answer", "action_supportbot_feedback", "action_supportbot_handoff"} <= set(
        executor.actions)
