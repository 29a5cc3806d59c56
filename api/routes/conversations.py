"""``GET /v1/conversations`` (a filtered page) and ``GET /v1/conversations/{id}`` (with its turns).
The chat widget restores a conversation after a reload with the second, so public keys may use it,
for web conversations only: the conversation's unguessable id is what grants access to it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, SessionDep, WidgetPrincipalDep
from api.errors import AUTHENTICATED, documented
from api.schemas import Channel, ConversationDetail, ConversationOut, FeedbackOut, Page, Rating, TurnOut
from core.db.queries import conversations, feedback, turns
from core.db.queries.conversations import ConversationFilters

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


@router.get("", summary="the tenant's conversations, most recently active first",
            responses=documented(*AUTHENTICATED))
def list_conversations(
    principal: PrincipalDep, session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    channel: Channel | None = None,
    created_after: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")] = None,
    created_before: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    handoff: Annotated[bool | None, Query(description="handed to a person")] = None,
    rating: Annotated[Rating | None, Query(description="has a turn rated so")] = None,
) -> Page[ConversationOut]:
    filters = ConversationFilters(channel=channel, created_after=created_after, created_before=created_before,
                                  handoff=handoff, rating=rating)
    rows, total = conversations.list_conversations(session, tenant_id=principal.tenant_id, filters=filters,
                                                   limit=limit, offset=offset)
    items = [ConversationOut(id=row.conversation.id, channel=row.conversation.channel,
                             user_id=row.conversation.user_id, handoff=row.conversation.handoff, turns=row.turns,
                             created_at=row.conversation.created_at, updated_at=row.conversation.updated_at)
             for row in rows]
    return Page[ConversationOut](items=items, total=total, limit=limit, offset=offset)


@router.get("/{conversation_id}", summary="one conversation with its turns and their feedback",
            responses=documented(*AUTHENTICATED, 404))
def get_conversation(conversation_id: uuid.UUID, principal: WidgetPrincipalDep, session: SessionDep
                     ) -> ConversationDetail:
    tenant_id = principal.tenant_id
    conversation = conversations.get_conversation(session, tenant_id=tenant_id, conversation_id=conversation_id,
                                                  channel=principal.conversation_channel)
    rows = turns.list_turns(session, tenant_id=tenant_id, conversation_id=conversation.id)
    ratings = feedback.feedback_for_turns(session, tenant_id=tenant_id, turn_ids=[row.id for row in rows])
    turn_items = []
    for row in rows:
        rated = ratings.get(row.id)
        turn_items.append(TurnOut.model_validate({
            **row.model_dump(include={"id", "status", "question", "standalone_query", "answer", "citations",
                                      "grounded", "abstained", "handoff_reason", "generator", "adapter_version",
                                      "error", "created_at", "finished_at"}),
            "feedback": FeedbackOut.model_validate(rated.model_dump()) if rated else None}))
    return ConversationDetail(id=conversation.id, channel=conversation.channel, user_id=conversation.user_id,
                              handoff=conversation.handoff, created_at=conversation.created_at,
                              updated_at=conversation.updated_at, turns=turn_items)
