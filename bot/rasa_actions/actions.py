"""Rasa custom actions backed by the supportbot API.

- ``action_supportbot_answer``: the latest user message -> ``POST /v1/chat`` (channel ``rasa``) ->
  the answer with its sources, thumbs up/down buttons and a ``custom`` payload with the citations;
  slots ``supportbot_conversation_id``, ``supportbot_turn_id``, ``supportbot_grounded``. An
  abstention, or an API that cannot answer, hands off (see ``rasa.handoff_action``).
- ``action_supportbot_feedback``: ``supportbot_rating`` (slot or entity, ``up``/``down``) and the
  optional ``supportbot_feedback_comment`` slot -> ``POST /v1/feedback`` for ``supportbot_turn_id``.
- ``action_supportbot_handoff``: ``POST /v1/handoff``; sets ``supportbot_handoff``.

No action raises to Rasa: every API failure becomes a polite message (and a handoff when the
question went unanswered). A domain may override each message with a response of the same name
(``utter_supportbot_unavailable``, ...); otherwise the built-in English text is sent.

Example (what ``supportbot actions`` does)::

    client = SupportbotApiClient.from_settings(settings.rasa)
    executor = ActionExecutor()
    for action in supportbot_actions(client, settings.rasa):
        executor.register_action(action)
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.rasa_actions.api_client import (
    ApiNotFoundError,
    ApiRejectedError,
    ChatReply,
    SupportbotApiClient,
    SupportbotApiError,
)
from core.schemas import Citation
from core.settings import RasaSettings, get_settings

logger = logging.getLogger(__name__)

SLOT_CONVERSATION = "supportbot_conversation_id"
SLOT_TURN = "supportbot_turn_id"
SLOT_GROUNDED = "supportbot_grounded"
SLOT_HANDOFF = "supportbot_handoff"
SLOT_RATING = "supportbot_rating"
SLOT_COMMENT = "supportbot_feedback_comment"
FEEDBACK_INTENT = "supportbot_feedback"

MESSAGES = {
    "utter_supportbot_unavailable": "Sorry, I can't look that up right now.",
    "utter_supportbot_rephrase": "Sorry, I couldn't read that question. Could you rephrase it, a bit shorter?",
    "utter_supportbot_handoff": "I'm handing you over to a person from our support team; "
                                "they will see this conversation.",
    "utter_supportbot_feedback_thanks": "Thanks for your feedback!",
    "utter_supportbot_feedback_unsaved": "Thanks! I couldn't save your rating just now, sorry.",
    "utter_supportbot_no_answer_to_rate": "There is no answer of mine to rate yet.",
    "utter_supportbot_ask_rating": "Was this answer helpful?",
}


class SupportbotAction(Action, ABC):
    """Base of the actions: holds the API client and settings, created on first use from
    :func:`core.settings.get_settings` when not given (as when ``rasa run actions`` loads the package).

    :param client: the API client to share between actions.
    :param settings: the ``rasa`` settings (handoff action, feedback buttons).
    """

    def __init__(self, client: SupportbotApiClient | None = None, settings: RasaSettings | None = None) -> None:
        self._client = client
        self._settings = settings

    @abstractmethod
    def name(self) -> str: ...

    @property
    def settings(self) -> RasaSettings:
        if self._settings is None:
            self._settings = get_settings().rasa
        return self._settings

    @property
    def client(self) -> SupportbotApiClient:
        if self._client is None:
            self._client = SupportbotApiClient.from_settings(self.settings)
        return self._client

    def handoff_events(self, dispatcher: CollectingDispatcher, domain: DomainDict) -> list[EventType]:
        """Schedule the handoff action, or, with none configured, say so here."""
        if self.settings.handoff_action:
            return [SlotSet(SLOT_HANDOFF, True), FollowupAction(self.settings.handoff_action)]
        utter(dispatcher, domain, "utter_supportbot_handoff")
        return [SlotSet(SLOT_HANDOFF, True)]

    def feedback_buttons(self) -> list[dict[str, Any]]:
        if not self.settings.feedback_buttons:
            return []
        return [{"title": title, "payload": f'/{FEEDBACK_INTENT}{{"{SLOT_RATING}":"{rating}"}}'}
                for title, rating in (("👍 Helpful", "up"), ("👎 Not helpful", "down"))]


class ActionSupportbotAnswer(SupportbotAction):
    def name(self) -> str:
        return "action_supportbot_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        question = str(tracker.latest_message.get("text") or "").strip()
        if not question:
            utter(dispatcher, domain, "utter_supportbot_rephrase")
            return []
        conversation_id = uuid_slot(tracker, SLOT_CONVERSATION)
        try:
            reply = await self._ask(question, conversation_id, tracker.sender_id)
        except ApiRejectedError as exc:
            logger.info("the supportbot API refused the question of %s: %s", tracker.sender_id, exc.message)
            utter(dispatcher, domain, "utter_supportbot_rephrase")
            return []
        except SupportbotApiError as exc:
            logger.error("no answer from the supportbot API for %s (%s): %s", tracker.sender_id,
                         type(exc).__name__, exc.message)
            utter(dispatcher, domain, "utter_supportbot_unavailable")
            return self.handoff_events(dispatcher, domain)
        dispatcher.utter_message(text=answer_text(reply), buttons=[] if reply.abstained else self.feedback_buttons(),
                                 json_message={"supportbot": answer_payload(reply)})
        events = [SlotSet(SLOT_CONVERSATION, str(reply.conversation_id)), SlotSet(SLOT_TURN, str(reply.turn_id)),
                  SlotSet(SLOT_GROUNDED, reply.grounded)]
        if reply.abstained:
            events += self.handoff_events(dispatcher, domain)
        return events

    async def _ask(self, question: str, conversation_id: uuid.UUID | None, sender_id: str) -> ChatReply:
        try:
            return await self.client.chat(message=question, conversation_id=conversation_id, user_id=sender_id)
        except ApiNotFoundError:
            if conversation_id is None:
                raise
            # The stored conversation is gone (database reset, another tenant's key): start a new one.
            logger.warning("conversation %s is unknown to the API; starting a new one for %s", conversation_id,
                           sender_id)
            return await self.client.chat(message=question, conversation_id=None, user_id=sender_id)


class ActionSupportbotFeedback(SupportbotAction):
    def name(self) -> str:
        return "action_supportbot_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        turn_id = uuid_slot(tracker, SLOT_TURN)
        if turn_id is None:
            utter(dispatcher, domain, "utter_supportbot_no_answer_to_rate")
            return []
        rating = str(tracker.get_slot(SLOT_RATING) or next(tracker.get_latest_entity_values(SLOT_RATING), "")
                     ).strip().lower()
        if rating not in ("up", "down"):
            utter(dispatcher, domain, "utter_supportbot_ask_rating", buttons=self.feedback_buttons())
            return [SlotSet(SLOT_RATING, None)]
        comment = tracker.get_slot(SLOT_COMMENT)
        reset = [SlotSet(SLOT_RATING, None), SlotSet(SLOT_COMMENT, None)]
        try:
            await self.client.feedback(turn_id=turn_id, rating="up" if rating == "up" else "down",
                                       comment=str(comment) if comment else None)
        except ApiNotFoundError:
            utter(dispatcher, domain, "utter_supportbot_no_answer_to_rate")
            return reset
        except SupportbotApiError as exc:
            logger.error("feedback on turn %s not saved (%s): %s", turn_id, type(exc).__name__, exc.message)
            utter(dispatcher, domain, "utter_supportbot_feedback_unsaved")
            return reset
        utter(dispatcher, domain, "utter_supportbot_feedback_thanks")
        return reset


class ActionSupportbotHandoff(SupportbotAction):
    def name(self) -> str:
        return "action_supportbot_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        conversation_id = uuid_slot(tracker, SLOT_CONVERSATION)
        events: list[EventType] = []
        try:
            try:
                reply = await self.client.handoff(conversation_id=conversation_id)
            except ApiNotFoundError:
                if conversation_id is None:
                    raise
                reply = await self.client.handoff(conversation_id=None)
            events.append(SlotSet(SLOT_CONVERSATION, str(reply.conversation_id)))
        except SupportbotApiError as exc:
            # The customer still gets the handoff message: the slot lets the channel route them to a person.
            logger.error("handoff of %s not recorded by the API (%s): %s", tracker.sender_id, type(exc).__name__,
                         exc.message)
        utter(dispatcher, domain, "utter_supportbot_handoff")
        return [*events, SlotSet(SLOT_HANDOFF, True)]


def supportbot_actions(client: SupportbotApiClient, settings: RasaSettings) -> list[SupportbotAction]:
    """The three actions, sharing one client."""
    return [kind(client, settings) for kind in (ActionSupportbotAnswer, ActionSupportbotFeedback,
                                                ActionSupportbotHandoff)]


def utter(dispatcher: CollectingDispatcher, domain: DomainDict, name: str, **kwargs: Any) -> None:
    """The domain's response ``name`` when it defines one, else the built-in text. (``domain`` is
    None when Rasa sent only a digest of a domain this server has not seen.)"""
    if name in ((domain or {}).get("responses") or {}):
        dispatcher.utter_message(response=name, **kwargs)
    else:
        dispatcher.utter_message(text=MESSAGES[name], **kwargs)


def uuid_slot(tracker: Tracker, slot: str) -> uuid.UUID | None:
    value = tracker.get_slot(slot)
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        logger.warning("slot %s holds %r, not a UUID; ignoring it", slot, value)
        return None


def citation_label(citation: Citation) -> str:
    """``[1] Nimbus R7 manual › Reset › Factory reset, p. 12 (https://...)``"""
    where = " › ".join([citation.title, *[h for h in citation.heading_path if h != citation.title]])
    page = f", p. {citation.page}" if citation.page else ""
    link = citation.url or citation.source
    return f"[{citation.number}] {where}{page}" + (f" ({link})" if link else "")


def answer_text(reply: ChatReply) -> str:
    if not reply.citations:
        return reply.answer
    return reply.answer + "\n\nSources:\n" + "\n".join(citation_label(c) for c in reply.citations)


def answer_payload(reply: ChatReply) -> dict[str, Any]:
    """What a custom channel needs to render the answer: ids, flags and the citations as data."""
    return {"turn_id": str(reply.turn_id), "conversation_id": str(reply.conversation_id),
            "grounded": reply.grounded, "abstained": reply.abstained, "handoff_reason": reply.handoff_reason,
            "citations": [c.model_dump(mode="json") for c in reply.citations]}
