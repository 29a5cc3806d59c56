"""The OpenAPI document matches reality: schemathesis generates requests for every operation and
checks that none gets a 5xx, an undocumented status, or a body that violates the schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from api.app import create_app
from core.db.engine import build_engine, open_session
from core.db.migrate import upgrade
from core.db.queries.api_keys import create_api_key
from core.db.queries.tenants import create_tenant
from core.settings import Settings

pytestmark = pytest.mark.slow

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance]
_KEYS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(indexed_template: Path, tmp_path_factory: pytest.TempPathFactory) -> schemathesis.Schema:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    shutil.copytree(indexed_template, data_dir)
    app_settings = Settings(data_dir=data_dir, generator={"backend": "extractive"},
                            api={"rate_limit_per_minute": 1_000_000, "rate_limit_burst": 1_000_000})
    engine = build_engine(app_settings)
    upgrade(engine)
    with open_session(engine) as session:
        create_tenant(session, tenant_id="acme")
        _KEYS["admin"] = create_api_key(session, tenant_id="acme", admin=True)[1]
    engine.dispose()
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings))


def test_every_operation_conforms_to_its_schema(api_schema: schemathesis.Schema) -> None:
    headers = {"Authorization": f"Bearer {_KEYS['admin']}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 17
    statuses: dict[str, set[int]] = {}

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def conforms(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

        conforms()
    assert len(statuses) == 17
    assert any(code < 300 for codes in statuses.values() for code in codes)


def test_the_document_describes_auth_and_streaming(api_schema: schemathesis.Schema) -> None:
    document = api_schema.raw_schema
    assert {"HTTPBearer", "APIKeyHeader"} <= set(document["components"]["securitySchemes"])
    chat = document["paths"]["/v1/chat"]["post"]
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    assert {"401", "404", "422", "429", "503", "504"} <= set(chat["responses"])
