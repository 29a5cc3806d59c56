"""What a channel adapter needs from the conversation service: ask a question in a thread, rate an
answer, hand a conversation to a person. The API process implements it over the same chat flow as
``POST /v1/chat`` (turn logged, feedback stored), so channels never run a second answer path."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal, Protocol

from core.schemas import Answer

ChannelName = Literal["slack", "teams"]
Rating = Literal["up", "down"]


@dataclass(frozen=True)
class ChannelReply:
    """An answered turn: what the channel posts, and the ids its feedback and handoff actions carry."""

    turn_id: uuid.UUID
    conversation_id: uuid.UUID
    answer: Answer
    """Citations already made public (file sources reduced to their names)."""


class ChannelConversations(Protocol):
    async def ask(self, *, tenant_id: str, channel: ChannelName, thread_key: str, question: str,
                  user_id: str | None, event_key: str | None = None) -> ChannelReply:
        """Answer ``question`` in the conversation of ``thread_key`` (created on its first message).

        :param event_key: the platform's id of the event carrying the question (unique in the
            channel): every delivery of one event gets one turn, across processes and restarts.
        :raises InvalidInputError: empty or oversized question (nothing stored).
        :raises AlreadyHandledError: the event with ``event_key`` was received before (nothing
            stored; the first delivery answers it).
        :raises BackendUnavailableError: the answer queue is full or the answer timed out.
        """
        ...

    async def rate(self, *, tenant_id: str, turn_id: uuid.UUID, rating: Rating) -> None:
        """Store thumbs up/down on an answered turn, as ``POST /v1/feedback`` does.

        :raises NotFoundError: no such turn in the tenant.
        """
        ...

    async def hand_off(self, *, tenant_id: str, conversation_id: uuid.UUID, channel: ChannelName) -> None:
        """Mark the conversation as handed to a person, as ``POST /v1/handoff`` does.

        :raises NotFoundError: no such conversation in the tenant.
        """
        ...
