"""Request dependencies, as ``Annotated`` aliases: the app state, a database session, the caller
(tenant + key, from ``Authorization: Bearer`` or ``X-API-Key``, rate limited per key) and what the
key may do.

Which routes a key may use is decided here, by the dependency a route declares:

- :data:`PrincipalDep`: full keys only. Every route uses it unless it is one the chat widget needs,
  so a new route refuses public keys until someone decides otherwise.
- :data:`WidgetPrincipalDep`: full or public keys; only the widget's routes (``POST /v1/chat``,
  ``POST /v1/feedback``, ``POST /v1/handoff``, ``GET /v1/conversations/{id}``). A public key sits in
  the page source of every site that embeds the widget, so those routes also call
  :meth:`Principal.require_channel` and, for it, see only web conversations
  (:attr:`Principal.conversation_channel`).
- :data:`AdminDep`: admin keys (which are never public).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.state import AppState
from core.db.engine import open_session
from core.db.queries.api_keys import find_active_key, hash_key
from core.db.tables import KeyScope
from core.errors import AuthenticationError, PermissionDeniedError, RateLimitedError


async def get_state(request: Request) -> AppState:
    # async: a plain def dependency costs a trip through the thread pool on every request
    state: AppState = request.app.state.supportbot
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with open_session(state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

WIDGET_CHANNEL = "web"
PUBLIC_KEY_ROUTES = ("POST /v1/chat, POST /v1/feedback, POST /v1/handoff and GET /v1/conversations/{id}, "
                     "the chat widget's routes")

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer sb_...`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key: `X-API-Key: sb_...`")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every query is scoped to, and the key used."""

    tenant_id: str
    key_id: int
    key_prefix: str
    admin: bool
    scope: KeyScope = KeyScope.FULL

    @property
    def public(self) -> bool:
        return self.scope == KeyScope.PUBLIC

    @property
    def conversation_channel(self) -> str | None:
        """The only channel whose conversations this key may read, continue or hand over (None: any)."""
        return WIDGET_CHANNEL if self.public else None

    def require_full(self, what: str) -> None:
        """:raises PermissionDeniedError: a public key, asking for ``what`` (which the widget never does)."""
        if self.public:
            raise PermissionDeniedError(f"public keys may not {what}; that needs a full API key")

    def require_channel(self, channel: str) -> None:
        """:raises PermissionDeniedError: a public key asking for another channel than the widget's."""
        if self.public and channel != WIDGET_CHANNEL:
            raise PermissionDeniedError(f"public keys may only use the {WIDGET_CHANNEL!r} channel (the chat "
                                        f"widget's), not {channel!r}")


async def authenticate(state: StateDep,
                       bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                       header_key: Annotated[str | None, Depends(_api_key_header)]) -> Principal:
    """A key found valid less than ``api.key_cache_s`` ago is trusted without a lookup
    (:mod:`api.recent_keys`). Otherwise it is looked up on a worker thread, in a session of its
    own, closed before the route runs (not :data:`SessionDep`, which lives as long as the
    request): a chat route runs for the whole answer and needs more connections to write its turn,
    so a connection held by authentication exhausted the pool under load and every request waited
    for one that never came back.

    :raises AuthenticationError: no key, or an unknown or revoked one.
    :raises RateLimitedError: the key is over its rate limit."""
    presented = (bearer.credentials if bearer else None) or header_key
    if not presented:
        raise AuthenticationError("an API key is required: `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    presented = presented.strip()
    digest = hash_key(presented)
    principal: Principal | None = state.keys.get(digest)
    if principal is None:
        principal = await to_thread.run_sync(_look_up, state, presented)
        if principal is None:
            raise AuthenticationError("the API key is unknown or revoked")
        state.keys.put(digest, principal)
    try:
        state.limiter.take(str(principal.key_id))
    except RateLimitedError:
        state.metrics.rejected.labels("rate_limited").inc()
        raise
    return principal


def _look_up(state: AppState, presented: str) -> Principal | None:
    with open_session(state.engine) as session:
        key = find_active_key(session, key=presented)
    if key is None or key.id is None:
        return None
    return Principal(tenant_id=key.tenant_id, key_id=key.id, key_prefix=key.prefix, admin=key.admin,
                     scope=KeyScope(key.scope))


WidgetPrincipalDep = Annotated[Principal, Depends(authenticate)]
"""Any valid key, public ones included: for the chat widget's routes only."""


def get_principal(principal: WidgetPrincipalDep) -> Principal:
    """:raises PermissionDeniedError: a public key (this route is not one the widget needs)."""
    if principal.public:
        raise PermissionDeniedError(f"public keys may only use {PUBLIC_KEY_ROUTES}; this route needs a full "
                                    "API key (`supportbot keys create` without --public)")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
"""A full (not public) key."""


def require_admin(principal: PrincipalDep) -> Principal:
    """:raises PermissionDeniedError: the key is not an admin key."""
    if not principal.admin:
        raise PermissionDeniedError("this route needs an admin API key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
