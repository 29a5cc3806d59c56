"""``POST /v1/chat``: one question, answered as JSON or streamed as server-sent events. One of the
chat widget's routes: public keys may use it, on the web channel only."""

from __future__ import annotations

import uuid

from anyio import to_thread
from fastapi import APIRouter, Request

from api.chat_flow import start_chat
from api.deps import Principal, StateDep, WidgetPrincipalDep
from api.errors import AUTHENTICATED, documented
from api.event_stream import EventStreamResponse, chat_events
from api.schemas import ChatRequest, ChatResponse
from api.state import AppState
from core.db.engine import open_session
from core.db.queries.conversations import get_conversation

router = APIRouter(prefix="/v1", tags=["chat"])

_STREAM_DOC = {"text/event-stream": {"schema": {"type": "string"}, "example":
               'event: token\ndata: {"text": "Hold the reset button"}\n\nevent: answer\ndata: {"turn_id": "..."}\n\n'}}


@router.post("/chat", summary="answer a message with citations (JSON, or SSE with Accept: text/event-stream)",
             response_model=ChatResponse,
             responses={200: {"content": _STREAM_DOC}, **documented(*AUTHENTICATED, 404, 503, 504)})
async def chat(body: ChatRequest, request: Request, principal: WidgetPrincipalDep, state: StateDep
               ) -> ChatResponse | EventStreamResponse:
    principal.require_channel(body.channel)
    if principal.conversation_channel is not None and body.conversation_id is not None:
        await to_thread.run_sync(_require_conversation_channel, state, principal, body.conversation_id)
    stream = "text/event-stream" in request.headers.get("accept", "")
    run = await start_chat(state, tenant_id=principal.tenant_id, request=body, stream=stream)
    if stream:
        return EventStreamResponse(chat_events(run), on_close=run.abandon)
    return run.response(await run.final_answer())


def _require_conversation_channel(state: AppState, principal: Principal, conversation_id: uuid.UUID) -> None:
    """A public key continues only web conversations (another channel's answers 404, as in
    ``GET /v1/conversations/{id}``).

    :raises NotFoundError: no such conversation of the key's tenant and channel."""
    with open_session(state.engine) as session:
        get_conversation(session, tenant_id=principal.tenant_id, conversation_id=conversation_id,
                         channel=principal.conversation_channel)
