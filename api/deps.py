"""Request dependencies, as ``Annotated`` aliases: the app state, a database session, the caller
(tenant + key, from ``Authorization: Bearer`` or ``X-API-Key``, rate limited per key) and the admin
requirement."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.state import AppState
from core.db.engine import open_session
from core.db.queries.api_keys import find_active_key
from core.errors import AuthenticationError, PermissionDeniedError, RateLimitedError


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.supportbot
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with open_session(state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer sb_...`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key: `X-API-Key: sb_...`")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every query is scoped to, and the key used."""

    tenant_id: str
    key_id: int
    key_prefix: str
    admin: bool


def get_principal(state: StateDep,
                  bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                  header_key: Annotated[str | None, Depends(_api_key_header)]) -> Principal:
    """The key is looked up in a session of its own, closed before the route runs (not
    :data:`SessionDep`, which lives as long as the request): a chat route runs for the whole
    answer and needs more connections to write its turn, so a connection held by authentication
    exhausted the pool under load and every request waited for one that never came back.

    :raises AuthenticationError: no key, or an unknown or revoked one.
    :raises RateLimitedError: the key is over its rate limit."""
    presented = (bearer.credentials if bearer else None) or header_key
    if not presented:
        raise AuthenticationError("an API key is required: `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    with open_session(state.engine) as session:
        key = find_active_key(session, key=presented.strip())
    if key is None or key.id is None:
        raise AuthenticationError("the API key is unknown or revoked")
    try:
        state.limiter.take(str(key.id))
    except RateLimitedError:
        state.metrics.rejected.labels("rate_limited").inc()
        raise
    return Principal(tenant_id=key.tenant_id, key_id=key.id, key_prefix=key.prefix, admin=key.admin)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    """:raises PermissionDeniedError: the key is not an admin key."""
    if not principal.admin:
        raise PermissionDeniedError("this route needs an admin API key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
