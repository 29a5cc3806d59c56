"""The Slack app (slack-bolt, Events API over HTTP): answers app mentions and direct messages in
their thread, with citations as Slack links, thumbs up/down buttons and a "talk to a person" button.

Bolt verifies every request (``v0`` HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing
secret, timestamps older than 5 minutes refused) and answers Slack's ``url_verification``. Events
are acknowledged at once and answered by lazy listeners afterwards, because an answer can take
longer than the 3 s Slack waits for the acknowledgement. Slack resends an event it believes went
unanswered with the same ``event_id``; those retries are acknowledged and dropped: at once when this
process saw the event (:class:`RecentIds`), otherwise when its turn, whose id is derived from the
event id, turns out to exist already (another process, or before a restart).

Messages from bots (other apps, or this one) are never answered, so two bots cannot talk in a loop;
events and actions the app does not answer are acknowledged, so Slack does not retry them.

Usage::

    channel = SlackChannel(settings.slack, conversations)   # conversations: ChannelConversations
    handler = AsyncSlackRequestHandler(channel.app)          # mounted at POST /slack/events
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.citation_links import slack_citation, slack_escape
from bot.channels.conversation_port import ChannelConversations, ChannelReply
from bot.channels.failure_text import ATTACHMENT_ONLY_TEXT, failure_text
from bot.channels.recent_ids import RecentIds
from core.errors import AlreadyHandledError, ConfigError, InvalidInputError, SupportbotError
from core.settings import SlackSettings

logger = logging.getLogger(__name__)

ACTION_UP = "supportbot_feedback_up"
ACTION_DOWN = "supportbot_feedback_down"
ACTION_HANDOFF = "supportbot_handoff"
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_BLOCK_TEXT_LIMIT = 3000  # Slack's limit for the text of a section block
_QUESTION_SUBTYPES = frozenset({None, "file_share"})  # a person's own message, with or without files


def answer_message(reply: ChannelReply, *, offer_handoff: bool) -> tuple[str, list[dict[str, Any]]]:
    """The fallback text and the blocks of an answer: the text, its sources as links, the buttons."""
    answer = reply.answer
    sources = "\n".join(slack_citation(citation) for citation in answer.citations)
    text = slack_escape(answer.text)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:_BLOCK_TEXT_LIMIT]}}]
    if sources:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": f"*Sources*\n{sources}"[:_BLOCK_TEXT_LIMIT]}})
    buttons: list[dict[str, Any]] = [
        {"type": "button", "action_id": ACTION_UP, "value": str(reply.turn_id),
         "text": {"type": "plain_text", "text": ":thumbsup: Helpful", "emoji": True}},
        {"type": "button", "action_id": ACTION_DOWN, "value": str(reply.turn_id),
         "text": {"type": "plain_text", "text": ":thumbsdown: Not helpful", "emoji": True}},
    ]
    if offer_handoff:
        buttons.append({"type": "button", "action_id": ACTION_HANDOFF, "value": str(reply.conversation_id),
                        "text": {"type": "plain_text", "text": "Talk to a person"},
                        **({"style": "primary"} if answer.abstained else {})})
    blocks.append({"type": "actions", "block_id": "supportbot_feedback", "elements": buttons})
    fallback = f"{text}\n{sources}" if sources else text
    return fallback, blocks


def _button_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInputError(f"the button carries no valid id: {value!r}") from None


def _thread_of(message: dict[str, Any]) -> str:
    return str(message.get("thread_ts") or message["ts"])


def _from_a_bot(event: dict[str, Any], context: AsyncBoltContext) -> bool:
    """Whether a bot wrote the message: another app (``bot_id``, a ``bot_message``) or this app's
    own bot user. Answering one could start two bots answering each other without end."""
    return bool(event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message"
                or (context.bot_user_id and event.get("user") == context.bot_user_id))


class SlackChannel:
    """The bolt app of one Slack workspace, answering for ``settings.tenant``.

    :param client: the Web API client (tests point one at a local server); by default one for
        ``settings.api_url`` with the bot token.
    :raises ConfigError: the signing secret, bot token or tenant is missing.
    """

    def __init__(self, settings: SlackSettings, conversations: ChannelConversations, *,
                 client: AsyncWebClient | None = None) -> None:
        if not (settings.enabled and settings.signing_secret and settings.bot_token and settings.tenant):
            raise ConfigError("slack.signing_secret, slack.bot_token and slack.tenant must all be set")
        self.settings = settings
        self.tenant_id: str = settings.tenant
        self.conversations = conversations
        self.events = RecentIds(ttl_s=settings.dedup_ttl_s)
        client = client or AsyncWebClient(token=settings.bot_token.get_secret_value(), base_url=settings.api_url)
        self.app = AsyncApp(client=client, signing_secret=settings.signing_secret.get_secret_value(),
                            process_before_response=False)
        self.app.middleware(self._skip_retried_events)
        self.app.event("app_mention")(ack=self._ack, lazy=[self._answer_event])
        self.app.event("message")(ack=self._ack, lazy=[self._answer_direct_message])
        self.app.action(re.compile(f"^({ACTION_UP}|{ACTION_DOWN})$"))(ack=self._ack, lazy=[self._rate])
        self.app.action(ACTION_HANDOFF)(ack=self._ack, lazy=[self._hand_off])
        # Last, so they match only what nothing above answers: bolt would answer those with 404,
        # and Slack retries an event that was not acknowledged.
        self.app.event(re.compile(".*"))(self._ack)
        self.app.action(re.compile(".*"))(self._ack)

    async def _skip_retried_events(self, body: dict[str, Any], next: Any) -> BoltResponse | None:
        event_id = body.get("event_id")
        if isinstance(event_id, str) and not self.events.first_time(event_id):
            logger.info("slack event %s was already received; retry dropped", event_id)
            return BoltResponse(status=200, body="")
        result: BoltResponse | None = await next()
        return result

    @staticmethod
    async def _ack(ack: AsyncAck) -> None:
        await ack()

    async def _answer_direct_message(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext,
                                     client: AsyncWebClient) -> None:
        if event.get("channel_type") != "im" or event.get("subtype") not in _QUESTION_SUBTYPES:
            return  # channel messages are answered when the bot is mentioned; edits and joins are not questions
        await self._answer_event(body, event, context, client)

    async def _answer_event(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext,
                            client: AsyncWebClient) -> None:
        if _from_a_bot(event, context):
            logger.info("slack event %s was written by a bot; not answered", body.get("event_id"))
            return
        channel, thread_ts = str(event["channel"]), _thread_of(event)
        question = _MENTION.sub(" ", str(event.get("text") or "")).strip()
        if not question and event.get("files"):
            await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=slack_escape(ATTACHMENT_ONLY_TEXT))
            return
        team = context.team_id or str(event.get("team") or "")
        event_id = body.get("event_id")
        try:
            reply = await self.conversations.ask(tenant_id=self.tenant_id, channel="slack",
                                                 thread_key=f"{team}/{channel}/{thread_ts}", question=question,
                                                 user_id=event.get("user"),
                                                 event_key=f"{team}/{event_id}" if isinstance(event_id, str) else None)
        except AlreadyHandledError:
            logger.info("slack event %s was received before (another process or a restart); retry dropped", event_id)
            return
        except SupportbotError as exc:
            await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=slack_escape(failure_text(exc)))
            return
        text, blocks = answer_message(reply, offer_handoff=self.settings.handoff_channel is not None)
        await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks)

    async def _rate(self, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        channel, user = body["channel"]["id"], body["user"]["id"]
        thread_ts = _thread_of(body["message"])
        try:
            await self.conversations.rate(tenant_id=self.tenant_id, turn_id=_button_id(str(action.get("value"))),
                                          rating="up" if action["action_id"] == ACTION_UP else "down")
        except SupportbotError as exc:
            await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts,
                                            text=f"Your feedback could not be saved: {slack_escape(exc.message)}")
            return
        await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts,
                                        text="Thanks for the feedback!")

    async def _hand_off(self, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        channel, user = body["channel"]["id"], body["user"]["id"]
        thread_ts = _thread_of(body["message"])
        target = self.settings.handoff_channel
        try:
            if target is None:
                raise ConfigError("slack.handoff_channel is not set")
            conversation_id = _button_id(str(action.get("value")))
            await self.conversations.hand_off(tenant_id=self.tenant_id, conversation_id=conversation_id,
                                              channel="slack")
        except SupportbotError as exc:
            await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts,
                                            text=f"I could not reach a person: {slack_escape(exc.message)}")
            return
        group = f"<!subteam^{self.settings.handoff_usergroup}> " if self.settings.handoff_usergroup else ""
        await client.chat_postMessage(
            channel=target,
            text=f"{group}<@{user}> asked to talk to a person in <#{channel}> (thread {thread_ts}, "
                 f"conversation {conversation_id}).")
        await client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                      text="I've asked a person from the support team to join this thread.")
