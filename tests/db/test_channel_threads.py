from __future__ import annotations

from sqlmodel import Session

from core.db.queries.channel_threads import open_thread_conversation, thread_conversation_id
from core.db.queries.tenants import create_tenant


def test_a_thread_keeps_one_conversation_per_tenant(session: Session) -> None:
    create_tenant(session, tenant_id="acme")
    create_tenant(session, tenant_id="globex")
    first = open_thread_conversation(session, tenant_id="acme", channel="slack", thread_key="T1/C1/1.0", user_id="U1")
    again = open_thread_conversation(session, tenant_id="acme", channel="slack", thread_key="T1/C1/1.0", user_id="U2")
    other_thread = open_thread_conversation(session, tenant_id="acme", channel="slack", thread_key="T1/C1/2.0")
    other_tenant = open_thread_conversation(session, tenant_id="globex", channel="slack", thread_key="T1/C1/1.0")
    assert first.id == again.id == thread_conversation_id(tenant_id="acme", channel="slack", thread_key="T1/C1/1.0")
    assert again.user_id == "U1"
    assert len({first.id, other_thread.id, other_tenant.id}) == 3
    assert (first.channel, other_tenant.tenant_id) == ("slack", "globex")
