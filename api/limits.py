"""Request limits: body size (ASGI middleware, 413) and a per-key token-bucket rate limit (429)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from core.errors import PayloadTooLargeError, RateLimitedError


class BodySizeLimit:
    """Refuses a request whose body is larger than the limit for its path, before the app sees it.

    A declared ``Content-Length`` over the limit is refused at once; otherwise the body is read up
    to the limit (chunked uploads included) and handed to the app as it came. Later ``receive``
    calls reach the server, so the app still learns when the client disconnects.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(limit, scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await self._refuse(limit, scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": bytes(body), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(PayloadTooLargeError(f"the request body is over the limit of {limit} bytes"))
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


class RateLimiter:
    """A token bucket per API key: ``burst`` requests at once, refilled at ``per_minute`` a minute.

    Usage::

        limiter = RateLimiter(per_minute=120, burst=30)
        limiter.take("key-id")  # raises RateLimitedError with retry_after_s when the bucket is empty
    """

    def __init__(self, *, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """:raises RateLimitedError: the key has no request left now."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise RateLimitedError(f"rate limit exceeded for this API key; retry in {wait:.1f} s", wait)
            self._buckets[key] = (tokens - 1.0, now)
