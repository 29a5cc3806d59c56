"""API keys. A key is shown once when created; only its SHA-256 hash and a short display prefix are
stored. Keys are long random tokens, so a plain hash (no salt, no slow KDF) is enough: nobody can
guess a key from its hash, and lookups stay one indexed equality.

Public (publishable) keys start with ``sbp_`` instead of ``sb_``, so one pasted into a web page is
recognisable as the kind that may be there."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, col, select

from core.db.tables import ApiKey, KeyScope
from core.db.types import utc_now
from core.errors import InvalidInputError, NotFoundError

KEY_PREFIX = "sb_"
PUBLIC_KEY_PREFIX = "sbp_"
DISPLAY_CHARS = 12


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(session: Session, *, tenant_id: str, admin: bool = False, scope: KeyScope = KeyScope.FULL,
                   name: str = "") -> tuple[ApiKey, str]:
    """A new key for the tenant; returns the row and the plaintext key (never stored).

    :raises NotFoundError: no such tenant.
    :raises InvalidInputError: an admin key that would be public.
    """
    from core.db.queries.tenants import get_tenant

    if admin and scope == KeyScope.PUBLIC:
        raise InvalidInputError("a key cannot be both admin and public: a public key is readable in the source "
                                "of every page that embeds the chat widget")
    if get_tenant(session, tenant_id=tenant_id) is None:
        raise NotFoundError(f"no tenant {tenant_id!r}; create it with `supportbot tenants create {tenant_id}`")
    key = (PUBLIC_KEY_PREFIX if scope == KeyScope.PUBLIC else KEY_PREFIX) + secrets.token_urlsafe(32)
    row = ApiKey(tenant_id=tenant_id, name=name, prefix=key[:DISPLAY_CHARS], key_hash=hash_key(key), admin=admin,
                 scope=scope.value)
    session.add(row)
    session.commit()
    return row, key


def find_active_key(session: Session, *, key: str) -> ApiKey | None:
    """The unrevoked key row for a presented key. This is the one query without a tenant id: it is
    how the tenant of a request is found."""
    statement = select(ApiKey).where(ApiKey.key_hash == hash_key(key), col(ApiKey.revoked_at).is_(None))
    return session.exec(statement).first()


def list_api_keys(session: Session, *, tenant_id: str) -> list[ApiKey]:
    statement = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(col(ApiKey.created_at))
    return list(session.exec(statement))


def revoke_api_key(session: Session, *, prefix: str, tenant_id: str | None = None) -> ApiKey:
    """Revoke the key with this display prefix (within ``tenant_id`` when given). Revoking twice
    keeps the first revocation time.

    :raises NotFoundError: no key has this prefix.
    """
    statement = select(ApiKey).where(ApiKey.prefix == prefix)
    if tenant_id is not None:
        statement = statement.where(ApiKey.tenant_id == tenant_id)
    row = session.exec(statement).first()
    if row is None:
        raise NotFoundError(f"no API key with prefix {prefix!r}")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        session.add(row)
        session.commit()
    return row
