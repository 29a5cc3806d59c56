"""``POST /v1/chat``: one question, answered as JSON or streamed as server-sent events."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.chat_flow import start_chat
from api.deps import PrincipalDep, StateDep
from api.errors import AUTHENTICATED, documented
from api.event_stream import EventStreamResponse, chat_events
from api.schemas import ChatRequest, ChatResponse

router = APIRouter(prefix="/v1", tags=["chat"])

_STREAM_DOC = {"text/event-stream": {"schema": {"type": "string"}, "example":
               'event: token\ndata: {"text": "Hold the reset button"}\n\nevent: answer\ndata: {"turn_id": "..."}\n\n'}}


@router.post("/chat", summary="answer a message with citations (JSON, or SSE with Accept: text/event-stream)",
             response_model=ChatResponse,
             responses={200: {"content": _STREAM_DOC}, **documented(*AUTHENTICATED, 404, 503, 504)})
async def chat(body: ChatRequest, request: Request, principal: PrincipalDep, state: StateDep
               ) -> ChatResponse | EventStreamResponse:
    run = await start_chat(state, tenant_id=principal.tenant_id, request=body)
    if "text/event-stream" in request.headers.get("accept", ""):
        return EventStreamResponse(chat_events(run), on_close=run.abandon)
    return run.response(await run.final_answer())
