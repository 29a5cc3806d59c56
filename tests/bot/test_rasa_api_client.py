"""The Rasa actions' API client through httpx.MockTransport: what it sends, and which documented
exception each failure becomes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.rasa_actions.api_client import (
    ApiAuthError,
    ApiNotFoundError,
    ApiProtocolError,
    ApiRateLimitedError,
    ApiRejectedError,
    ApiTimeoutError,
    ApiUnavailableError,
    SupportbotApiClient,
    SupportbotApiError,
)

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> SupportbotApiClient:
    return SupportbotApiClient("http://api.test/", SecretStr("sk-test"), timeout_s=1,
                               transport=httpx.MockTransport(handler))


def _chat(handler: Handler, conversation_id: uuid.UUID | None = None) -> Any:
    async def go() -> Any:
        client = _client(handler)
        try:
            return await client.chat(message="How do I reset it?", conversation_id=conversation_id, user_id="u-1")
        finally:
            await client.aclose()
    return asyncio.run(go())


def test_chat_sends_key_channel_and_conversation_and_parses_the_reply() -> None:
    seen: list[httpx.Request] = []
    turn, conversation = uuid.uuid4(), uuid.uuid4()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"turn_id": str(turn), "conversation_id": str(conversation),
                                         "answer": "Hold reset [1].", "grounded": True, "abstained": False,
                                         "citations": [{"number": 1, "chunk_id": "c", "title": "Guide",
                                                        "snippet": "Hold reset."}], "generator": "extractive"})

    reply = _chat(handler, conversation)
    assert reply.turn_id == turn and reply.citations[0].title == "Guide"
    request = seen[0]
    assert request.url == "http://api.test/v1/chat"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert json.loads(request.content) == {"message": "How do I reset it?", "channel": "rasa",
                                           "conversation_id": str(conversation), "user_id": "u-1"}


def _error(status: int, code: str = "x", headers: dict[str, str] | None = None) -> Handler:
    return lambda _request: httpx.Response(status, json={"error": {"code": code, "message": "why"}},
                                           headers=headers)


@pytest.mark.parametrize(("handler", "kind"), [
    (_error(401, "unauthorized"), ApiAuthError),
    (_error(403, "forbidden"), ApiAuthError),
    (_error(404, "not_found"), ApiNotFoundError),
    (_error(422, "invalid_input"), ApiRejectedError),
    (_error(413, "payload_too_large"), ApiRejectedError),
    (_error(503, "overloaded"), ApiUnavailableError),
    (_error(504, "timeout"), ApiTimeoutError),
    (lambda _r: httpx.Response(502, text="<html>bad gateway</html>"), ApiUnavailableError),
    (lambda _r: httpx.Response(200, text="not json"), ApiProtocolError),
    (lambda _r: httpx.Response(200, json={"answer": "no ids"}), ApiProtocolError),
])
def test_failures_become_the_documented_exceptions(handler: Handler, kind: type[SupportbotApiError]) -> None:
    with pytest.raises(kind) as caught:
        _chat(handler)
    assert isinstance(caught.value, SupportbotApiError)


def test_api_error_code_and_rate_limit_retry_after_are_kept() -> None:
    with pytest.raises(ApiRateLimitedError) as caught:
        _chat(_error(429, "rate_limited", {"Retry-After": "7"}))
    assert caught.value.retry_after_s == 7 and caught.value.code == "rate_limited"
    assert isinstance(caught.value, ApiUnavailableError) and caught.value.status_code == 429


def test_transport_timeout_and_refused_connection() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ApiTimeoutError):
        _chat(slow)
    with pytest.raises(ApiUnavailableError) as caught:
        _chat(refused)
    assert not isinstance(caught.value, ApiTimeoutError)


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match=r"rasa\.api_url"):
        SupportbotApiClient("api.test:8000", None)
