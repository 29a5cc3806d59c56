"""The conversation service for chat channels (Slack, Teams), over the same chat flow as
``POST /v1/chat``: admission through the answer gate, the turn logged pending then answered, and
feedback and handoff stored by the same queries as ``/v1/feedback`` and ``/v1/handoff``."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from anyio import to_thread

from api.chat_flow import start_chat
from api.schemas import ChatRequest, public_citations
from api.state import AppState
from bot.channels.conversation_port import ChannelName, ChannelReply, Rating
from core.db.engine import open_session
from core.db.queries.channel_threads import channel_event_turn_id, open_thread_conversation
from core.db.queries.conversations import request_handoff
from core.db.queries.feedback import save_feedback


class StateConversations:
    """:class:`bot.channels.conversation_port.ChannelConversations` over the app's state, which
    exists only once the app has started (hence the getter)."""

    def __init__(self, get_state: Callable[[], AppState]) -> None:
        self._get_state = get_state

    async def ask(self, *, tenant_id: str, channel: ChannelName, thread_key: str, question: str,
                  user_id: str | None, event_key: str | None = None) -> ChannelReply:
        state = self._get_state()

        def open_conversation() -> uuid.UUID:
            with open_session(state.engine) as session:
                return open_thread_conversation(session, tenant_id=tenant_id, channel=channel, thread_key=thread_key,
                                                user_id=user_id).id

        state.service.validate(question)  # before anything is stored
        conversation_id = await to_thread.run_sync(open_conversation)
        request = ChatRequest(conversation_id=conversation_id, message=question, channel=channel, user_id=user_id)
        turn_id = (channel_event_turn_id(tenant_id=tenant_id, channel=channel, event_key=event_key)
                   if event_key else None)
        run = await start_chat(state, tenant_id=tenant_id, request=request, turn_id=turn_id)
        answer = await run.final_answer()
        public = answer.model_copy(update={"citations": public_citations(answer.citations)})
        return ChannelReply(turn_id=run.turn_id, conversation_id=run.conversation_id, answer=public)

    async def rate(self, *, tenant_id: str, turn_id: uuid.UUID, rating: Rating) -> None:
        state = self._get_state()

        def write() -> None:
            with open_session(state.engine) as session:
                save_feedback(session, tenant_id=tenant_id, turn_id=turn_id, rating=rating)

        await to_thread.run_sync(write)
        state.metrics.feedback.labels(rating).inc()

    async def hand_off(self, *, tenant_id: str, conversation_id: uuid.UUID, channel: ChannelName) -> None:
        state = self._get_state()

        def write() -> None:
            with open_session(state.engine) as session:
                request_handoff(session, tenant_id=tenant_id, conversation_id=conversation_id, channel=channel)

        await to_thread.run_sync(write)
