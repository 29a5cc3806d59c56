"""Server-sent events for streamed answers: ``token`` events with the generated text a finished
sentence at a time (sanitised, without sentences holding the canary or the system prompt: see
``knowledge.citations.stream_gate``), then one ``answer`` event with the checked answer (citations,
grounded, abstained, turn_id), which replaces the tokens, or one ``error`` event with the same body
as an error response."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.chat_flow import ChatTurnRun
from api.errors import STATUS_BY_CODE, error_payload
from core.errors import SupportbotError


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def chat_events(chat: ChatTurnRun) -> AsyncIterator[str]:
    try:
        async for event in chat.events():
            if event.kind == "token":
                yield sse("token", {"text": event.text})
            elif event.answer is not None:
                yield sse("answer", chat.response(event.answer).model_dump(mode="json"))
    except SupportbotError as exc:
        yield sse("error", {**error_payload(exc.code, exc.message), "status": STATUS_BY_CODE[exc.code]})
    except Exception:  # noqa: BLE001 - the turn is recorded as failed; the client gets a generic error
        yield sse("error", {**error_payload("internal_error", "internal server error"), "status": 500})


class EventStreamResponse(StreamingResponse):
    """A streaming response that calls ``on_close`` however it ends: completed, client gone
    (cancelled by Starlette's disconnect listener) or a failed send."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str], *, on_close: Callable[[], Awaitable[None]]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._content = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self._content, "aclose", None)
            if aclose is not None:
                await aclose()
            await self._on_close()
