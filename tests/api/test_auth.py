"""API keys: Bearer or X-API-Key; missing, wrong and revoked keys are 401; admin routes need an admin key."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import event

from core.db.engine import open_session
from core.db.queries.api_keys import revoke_api_key
from tests.api.conftest import Api, MakeApi

pytestmark = pytest.mark.slow

PROTECTED = [("POST", "/v1/chat", {"message": "hi", "channel": "web"}), ("GET", "/v1/conversations", None),
             ("POST", "/v1/feedback", {"turn_id": "00000000-0000-0000-0000-000000000000", "rating": "up"}),
             ("POST", "/v1/search", {"query": "reset"}), ("GET", "/v1/documents", None),
             ("POST", "/v1/admin/reindex", {}), ("GET", "/v1/admin/jobs", None)]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_missing_or_unknown_key_is_401(api: Api, method: str, path: str, body: object) -> None:
    for headers in ({}, {"Authorization": "Bearer sb_not-a-key"}, {"X-API-Key": "nope"}, {"Authorization": "Basic eDp5"}):
        response = api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"]["code"] == "unauthorized"


def test_bearer_and_x_api_key_both_work(api: Api) -> None:
    assert api.client.get("/v1/conversations", headers={"Authorization": f"Bearer {api.keys['acme']}"}).status_code == 200
    assert api.client.get("/v1/conversations", headers={"X-API-Key": api.keys["acme"]}).status_code == 200


def test_revoked_key_is_401_at_once_without_the_key_cache(make_api: MakeApi) -> None:
    api = make_api(api={"key_cache_s": 0})
    key = api.new_key("acme")
    assert api.client.get("/v1/conversations", headers={"X-API-Key": key}).status_code == 200
    with open_session(api.state.engine) as session:
        revoke_api_key(session, prefix=key[:12])
    response = api.client.get("/v1/conversations", headers={"X-API-Key": key})
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_a_key_is_looked_up_once_per_cache_period_and_its_revocation_seen_after_it(make_api: MakeApi) -> None:
    api = make_api(api={"key_cache_s": 1.0})
    key = api.new_key("acme")
    lookups: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM api_key" in statement:
            lookups.append(statement)

    event.listen(api.state.engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert api.client.get("/v1/conversations", headers={"X-API-Key": key}).status_code == 200
        assert len(lookups) == 1
        # unknown keys are never remembered: each guess is looked up
        for _ in range(3):
            assert api.client.get("/v1/conversations", headers={"X-API-Key": key + "x"}).status_code == 401
        assert len(lookups) == 4
        with open_session(api.state.engine) as session:
            revoke_api_key(session, prefix=key[:12])
        time.sleep(1.05)
        response = api.client.get("/v1/conversations", headers={"X-API-Key": key})
        assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    finally:
        event.remove(api.state.engine, "before_cursor_execute", count)


def test_admin_routes_need_an_admin_key(api: Api) -> None:
    for method, path in (("POST", "/v1/admin/reindex"), ("POST", "/v1/admin/train"), ("GET", "/v1/admin/jobs")):
        body = {} if method == "POST" else None
        refused = api.client.request(method, path, json=body, headers=api.headers("acme"))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert api.client.request(method, path, json=body, headers=api.headers("acme-admin")).status_code in (200, 202)


def test_health_and_metrics_need_no_key(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").status_code == 200
    assert api.client.get("/metrics").status_code == 200
