"""Tenants. Creating and listing them is an operator's task (``supportbot tenants``), not a tenant's."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from core.db.tables import Tenant
from core.errors import InvalidInputError

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def create_tenant(session: Session, *, tenant_id: str, name: str = "") -> Tenant:
    """:raises InvalidInputError: an id that is not a lowercase slug, or one already taken."""
    if not TENANT_ID.match(tenant_id):
        raise InvalidInputError(f"tenant id {tenant_id!r} must be 1-64 of a-z, 0-9, '-', '_' (starting with a letter or digit)")
    if session.get(Tenant, tenant_id) is not None:
        raise InvalidInputError(f"tenant {tenant_id!r} already exists")
    tenant = Tenant(id=tenant_id, name=name or tenant_id)
    session.add(tenant)
    session.commit()
    return tenant


def get_tenant(session: Session, *, tenant_id: str) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.exec(select(Tenant).order_by(col(Tenant.id))))
