"""The supportbot API as the Rasa actions see it: an async httpx client for ``POST /v1/chat``,
``POST /v1/feedback`` and ``POST /v1/handoff``.

Exceptions (catch exactly what you handle)::

    SupportbotApiError            anything below; ``status_code`` and ``code`` when the API answered
    ├── ApiUnavailableError       the API cannot answer now: no connection, 5xx, 503 overloaded
    │   ├── ApiTimeoutError       no answer within ``timeout_s`` (or 504 from the API)
    │   └── ApiRateLimitedError   429; ``retry_after_s`` from the Retry-After header
    ├── ApiAuthError              401/403: the configured API key is missing, unknown or revoked
    ├── ApiNotFoundError          404: the conversation or turn is not (or no longer) the tenant's
    ├── ApiRejectedError          400/413/422: the API refused the request (e.g. an oversized message)
    └── ApiProtocolError          the API answered something that is not the documented JSON

Example::

    client = SupportbotApiClient.from_settings(settings.rasa)
    reply = await client.chat(message="How do I reset the router?", conversation_id=None, user_id="u1")
    await client.aclose()
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from core.schemas import Citation
from core.settings import RasaSettings

CHANNEL = "rasa"


class SupportbotApiError(Exception):
    """The supportbot API did not do what was asked. ``status_code``/``code`` are set when it answered."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code


class ApiUnavailableError(SupportbotApiError):
    """The API cannot answer now; try later or hand the customer to a person."""


class ApiTimeoutError(ApiUnavailableError):
    """No answer in time."""


class ApiRateLimitedError(ApiUnavailableError):
    """Too many requests for this API key."""

    def __init__(self, message: str, *, retry_after_s: float | None, status_code: int = 429,
                 code: str | None = None) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.retry_after_s = retry_after_s


class ApiAuthError(SupportbotApiError):
    """The API key is missing, unknown or revoked (a configuration error of the action server)."""


class ApiNotFoundError(SupportbotApiError):
    """The conversation or turn does not exist for the key's tenant."""


class ApiRejectedError(SupportbotApiError):
    """The request was refused as invalid (empty or oversized message, bad field)."""


class ApiProtocolError(SupportbotApiError):
    """The answer was not the JSON the API documents."""


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChatReply(_Reply):
    """The fields of the API's ``ChatResponse`` the actions use."""

    turn_id: uuid.UUID
    conversation_id: uuid.UUID
    answer: str
    citations: list[Citation]
    grounded: bool
    abstained: bool
    handoff_reason: str | None = None


_ReplyT = TypeVar("_ReplyT", bound=_Reply)


class HandoffReply(_Reply):
    conversation_id: uuid.UUID
    handoff: bool


class FeedbackReply(_Reply):
    turn_id: uuid.UUID
    rating: Literal["up", "down"]


class SupportbotApiClient:
    """An async client of the supportbot API. The httpx client is created on first use (inside the
    server's event loop), never at construction.

    :param base_url: the API's base URL, e.g. ``http://127.0.0.1:8000``.
    :param api_key: a tenant API key, sent as ``Authorization: Bearer``.
    :param timeout_s: read/write/pool timeout of one request.
    :param connect_timeout_s: connect timeout.
    :param transport: an httpx transport (tests: ``httpx.MockTransport``).
    """

    def __init__(self, base_url: str, api_key: SecretStr | None, *, timeout_s: float = 60.0,
                 connect_timeout_s: float = 5.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"rasa.api_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: RasaSettings) -> SupportbotApiClient:
        return cls(settings.api_url, settings.api_key, timeout_s=settings.timeout_s,
                   connect_timeout_s=settings.connect_timeout_s)

    async def chat(self, *, message: str, conversation_id: uuid.UUID | None, user_id: str | None) -> ChatReply:
        """Ask a question in a conversation (a new one when ``conversation_id`` is None).

        :raises SupportbotApiError: see the module docstring.
        """
        body: dict[str, Any] = {"message": message, "channel": CHANNEL}
        if conversation_id is not None:
            body["conversation_id"] = str(conversation_id)
        if user_id:
            body["user_id"] = user_id[:200]
        return _parse(ChatReply, await self._post("/v1/chat", body))

    async def feedback(self, *, turn_id: uuid.UUID, rating: Literal["up", "down"], comment: str | None = None
                       ) -> FeedbackReply:
        """Rate an answered turn (posting again replaces the rating).

        :raises SupportbotApiError: see the module docstring.
        """
        body: dict[str, Any] = {"turn_id": str(turn_id), "rating": rating}
        if comment:
            body["comment"] = comment[:4000]
        return _parse(FeedbackReply, await self._post("/v1/feedback", body))

    async def handoff(self, *, conversation_id: uuid.UUID | None) -> HandoffReply:
        """Hand the conversation to a person (a new conversation when ``conversation_id`` is None).

        :raises SupportbotApiError: see the module docstring.
        """
        body: dict[str, Any] = {"channel": CHANNEL}
        if conversation_id is not None:
            body["conversation_id"] = str(conversation_id)
        return _parse(HandoffReply, await self._post("/v1/handoff", body))

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            headers = {"Accept": "application/json", "User-Agent": "supportbot-rasa-actions"}
            if self.api_key is not None:
                headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
            self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout,
                                           transport=self._transport)
        return self._http

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            response = await self._client().post(path, json=body)
        except httpx.TimeoutException as exc:
            raise ApiTimeoutError(f"the supportbot API did not answer {path} in time") from exc
        except httpx.TransportError as exc:
            raise ApiUnavailableError(f"cannot reach the supportbot API at {self.base_url}: {exc}") from exc
        if response.is_success:
            try:
                return response.json()
            except ValueError as exc:
                raise ApiProtocolError(f"{path} answered {response.status_code} with a body that is not JSON",
                                       status_code=response.status_code) from exc
        raise _error_for(path, response)


def _parse(model: type[_ReplyT], payload: Any) -> _ReplyT:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ApiProtocolError(f"unexpected {model.__name__} from the supportbot API: {exc}") from exc


def _error_for(path: str, response: httpx.Response) -> SupportbotApiError:
    status = response.status_code
    code, detail = None, response.reason_phrase
    try:
        error = response.json().get("error", {})
        code, detail = error.get("code"), error.get("message", detail)
    except (ValueError, AttributeError):
        pass  # not the API's error shape (e.g. a proxy's HTML page): keep the status line
    message = f"{path}: {status} {detail}"
    if status == 429:
        retry_after = response.headers.get("Retry-After", "")
        return ApiRateLimitedError(message, retry_after_s=float(retry_after) if retry_after.isdigit() else None,
                                   code=code)
    if status == 504:
        return ApiTimeoutError(message, status_code=status, code=code)
    if status >= 500:
        return ApiUnavailableError(message, status_code=status, code=code)
    kind: type[SupportbotApiError] = {401: ApiAuthError, 403: ApiAuthError, 404: ApiNotFoundError}.get(
        status, ApiRejectedError)
    return kind(message, status_code=status, code=code)

