"""The Microsoft Teams bot: Bot Framework activities in, answers out as an Adaptive Card (the
answer, its sources as Markdown links, thumbs up/down and "talk to a person" buttons).

A request is authenticated (:mod:`bot.channels.teams_auth`) and acknowledged; the answer is sent
afterwards to the activity's ``serviceUrl`` (:mod:`bot.channels.teams_connector`), since the
connector does not wait for it. The card's buttons are ``Action.Submit``: Teams sends their data
back as a message activity whose ``value`` names the action.

Activities other than messages are acknowledged and ignored, and so are messages from bots (another
bot, or this one), so two bots cannot answer each other without end. The turn of a message has an
id derived from the activity id, so a redelivered activity is answered once, whichever process
receives it.

Usage::

    channel = TeamsChannel(settings.teams, conversations)
    activity = await channel.receive(body, authorization_header)   # AuthenticationError -> 401
    await channel.respond(activity)                                # after the HTTP response
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from microsoft_agents.activity import Activity, ActivityTypes, Attachment, RoleTypes
from pydantic import ValidationError

from bot.channels.citation_links import markdown_citation
from bot.channels.conversation_port import ChannelConversations, ChannelReply
from bot.channels.failure_text import ATTACHMENT_ONLY_TEXT, failure_text
from bot.channels.recent_ids import RecentIds
from bot.channels.teams_auth import BotConnectorAuth
from bot.channels.teams_connector import ConnectorSender
from core.errors import AlreadyHandledError, ConfigError, InvalidInputError, SupportbotError
from core.settings import TeamsSettings

logger = logging.getLogger(__name__)

ACTION_FEEDBACK = "supportbot_feedback"
ACTION_HANDOFF = "supportbot_handoff"
CARD_ACTION_MEMORY_S = 3600.0
"""How long a card action's activity id is remembered (the Bot Connector redelivers within minutes)."""
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_MENTION = re.compile(r"<at>.*?</at>", re.S)


def answer_card(reply: ChannelReply) -> dict[str, Any]:
    """The Adaptive Card of an answer."""
    answer = reply.answer
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": answer.text, "wrap": True}]
    if answer.citations:
        body.append({"type": "TextBlock", "text": "**Sources**", "wrap": True, "spacing": "Medium"})
        body.append({"type": "TextBlock", "wrap": True, "isSubtle": True,
                     "text": "\n\n".join(markdown_citation(c) for c in answer.citations)})
    actions: list[dict[str, Any]] = [
        {"type": "Action.Submit", "title": "👍 Helpful",
         "data": {"action": ACTION_FEEDBACK, "rating": "up", "turn_id": str(reply.turn_id)}},
        {"type": "Action.Submit", "title": "👎 Not helpful",
         "data": {"action": ACTION_FEEDBACK, "rating": "down", "turn_id": str(reply.turn_id)}},
        {"type": "Action.Submit", "title": "Talk to a person",
         "data": {"action": ACTION_HANDOFF, "conversation_id": str(reply.conversation_id)}},
    ]
    return {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.4", "body": body, "actions": actions}


def _from_a_bot(activity: Activity) -> bool:
    """Whether a bot sent the activity (its ``from.role``, or this bot's own id as sender)."""
    sender = activity.from_property
    if sender is None:
        return False
    return sender.role == RoleTypes.agent or (activity.recipient is not None and sender.id == activity.recipient.id)


def _id_from(value: dict[str, Any], key: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value.get(key)))
    except ValueError:
        raise InvalidInputError(f"the card action carries no valid {key}") from None


class TeamsChannel:
    """The Teams bot answering for ``settings.tenant``.

    :raises ConfigError: the app id, app password or tenant is missing.
    """

    def __init__(self, settings: TeamsSettings, conversations: ChannelConversations, *,
                 auth: BotConnectorAuth | None = None, sender: ConnectorSender | None = None) -> None:
        if not (settings.enabled and settings.tenant):
            raise ConfigError("teams.app_id, teams.app_password and teams.tenant must all be set")
        self.settings = settings
        self.tenant_id: str = settings.tenant
        self.conversations = conversations
        self.auth = auth or BotConnectorAuth(settings)
        self.sender = sender or ConnectorSender(settings)
        # Card actions have no turn to carry a derived id (see _answer); a redelivered click is
        # recognised by its activity id within this process.
        self.card_actions = RecentIds(ttl_s=CARD_ACTION_MEMORY_S)

    async def receive(self, body: bytes, authorization: str | None) -> Activity:
        """The authenticated activity of a request.

        :raises AuthenticationError: the token is missing or fails a check (nothing is answered).
        :raises InvalidInputError: the body is not an activity.
        """
        token = await self.auth.verify(authorization)  # an unauthenticated caller learns nothing about its body
        try:
            activity = Activity.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidInputError(f"the body is not a Bot Framework activity: {exc.error_count()} error(s)") from None
        # keys are endorsed for a channel ("msteams"), not for its sub-channels ("msteams:COPILOT")
        token.check_activity(activity.service_url,
                             str(activity.channel_id).split(":", 1)[0] if activity.channel_id else None)
        return activity

    async def respond(self, activity: Activity) -> None:
        """Answer a message, or carry out a card action; other activities are ignored. Failures are
        told to the user when possible and logged otherwise (nobody else is waiting for them)."""
        if activity.type != ActivityTypes.message:
            return
        if _from_a_bot(activity):
            logger.info("teams activity %s was sent by a bot; not answered", activity.id)
            return
        try:
            if isinstance(activity.value, dict) and activity.value.get("action"):
                if activity.id and not self.card_actions.first_time(activity.id):
                    logger.info("teams card action %s was received before; redelivery dropped", activity.id)
                    return
                await self._card_action(activity, activity.value)
            else:
                await self._answer(activity)
        except SupportbotError as exc:
            logger.warning("teams activity %s not answered: %s", activity.id, exc.message)

    async def _answer(self, activity: Activity) -> None:
        question = _MENTION.sub(" ", activity.text or "").strip()
        if not question and activity.attachments:
            await self._send_text(activity, ATTACHMENT_ONLY_TEXT)
            return
        tenant = activity.conversation.tenant_id if activity.conversation else None
        conversation_key = activity.conversation.id if activity.conversation else ""
        user = activity.from_property
        try:
            reply = await self.conversations.ask(
                tenant_id=self.tenant_id, channel="teams", thread_key=f"{tenant or ''}/{conversation_key}",
                question=question, user_id=(user.aad_object_id or user.id) if user else None,
                event_key=f"{tenant or ''}/{conversation_key}/{activity.id}" if activity.id else None)
        except AlreadyHandledError:
            logger.info("teams activity %s was received before; redelivery dropped", activity.id)
            return
        except SupportbotError as exc:
            await self._send_text(activity, failure_text(exc))
            return
        message = activity.create_reply()
        message.attachments = [Attachment(content_type=ADAPTIVE_CARD, content=answer_card(reply))]
        message.summary = reply.answer.text[:200]
        await self._send(activity, message)

    async def _card_action(self, activity: Activity, value: dict[str, Any]) -> None:
        try:
            if value.get("action") == ACTION_FEEDBACK:
                rating = value.get("rating")
                if rating not in ("up", "down"):
                    raise InvalidInputError("the card action carries no rating")
                await self.conversations.rate(tenant_id=self.tenant_id, turn_id=_id_from(value, "turn_id"),
                                              rating="up" if rating == "up" else "down")
                await self._send_text(activity, "Thanks for the feedback!")
            elif value.get("action") == ACTION_HANDOFF:
                conversation_id = _id_from(value, "conversation_id")
                await self.conversations.hand_off(tenant_id=self.tenant_id, conversation_id=conversation_id,
                                                  channel="teams")
                await self._notify_support(activity, conversation_id)
                await self._send_text(activity, "I've asked a person from the support team to follow up here.")
            else:
                raise InvalidInputError(f"unknown card action {value.get('action')!r}")
        except SupportbotError as exc:
            await self._send_text(activity, f"That did not work: {exc.message}")

    async def _notify_support(self, activity: Activity, conversation_id: uuid.UUID) -> None:
        target = self.settings.handoff_conversation_id
        if not target or not activity.service_url:
            return
        who = activity.from_property.name if activity.from_property and activity.from_property.name else "A user"
        notice = Activity(type=ActivityTypes.message, text=f"{who} asked to talk to a person "
                          f"(conversation {conversation_id}).", channel_id=activity.channel_id)
        await self.sender.send(activity.service_url, target, notice)

    async def _send_text(self, activity: Activity, text: str) -> None:
        await self._send(activity, activity.create_reply(text))

    async def _send(self, activity: Activity, message: Activity) -> None:
        if not activity.service_url or not activity.conversation:
            raise InvalidInputError("the activity has no serviceUrl or conversation to reply to")
        await self.sender.send(activity.service_url, activity.conversation.id, message)
