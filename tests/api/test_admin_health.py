"""Admin job requests, readiness and the Prometheus exposition."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import RESET_QUESTION, Api, MakeApi

pytestmark = pytest.mark.slow


def test_admin_requests_are_recorded_as_queued_jobs(api: Api) -> None:
    reindex = api.client.post("/v1/admin/reindex", json={"product": "nimbus-r7"}, headers=api.headers("acme-admin"))
    assert reindex.status_code == 202
    job = reindex.json()
    assert job["kind"] == "reindex" and job["status"] == "queued" and job["payload"]["product"] == "nimbus-r7"
    assert job["requested_by"] == api.keys["acme-admin"][:12]
    assert api.client.post("/v1/admin/train", json={}, headers=api.headers("acme-admin")).status_code == 202
    jobs = api.client.get("/v1/admin/jobs", headers=api.headers("acme-admin")).json()
    assert jobs["total"] == 2 and [j["kind"] for j in jobs["items"]] == ["train", "reindex"]
    only = api.client.get("/v1/admin/jobs", params={"kind": "reindex"}, headers=api.headers("acme-admin")).json()
    assert [j["id"] for j in only["items"]] == [job["id"]]
    other_admin = api.new_key("globex", admin=True)
    assert api.client.get("/v1/admin/jobs", headers={"X-API-Key": other_admin}).json()["total"] == 0
    assert api.client.post("/v1/admin/train", json={"epochs": 3}, headers=api.headers("acme-admin")).status_code == 422


def test_readiness_reports_each_backend(api: Api) -> None:
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "store": "ok", "generator": "ok"}}


def test_unreachable_generator_server_is_not_ready(make_api: MakeApi) -> None:
    api = make_api(generator={"backend": "remote", "remote": {"url": "http://127.0.0.1:9"}})
    response = api.client.get("/readyz")
    assert response.status_code == 503
    assert "generator" in response.json()["error"]["message"] and api.client.get("/healthz").status_code == 200


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_count_requests_tokens_abstentions_and_handoffs(make_api: MakeApi) -> None:
    api, other = make_api(), make_api()
    api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"}, headers=api.headers())
    api.client.post("/v1/chat", json={"message": "What is the capital of Australia?", "channel": "web"},
                    headers=api.headers())
    api.client.get("/v1/conversations", headers={"X-API-Key": "wrong"})
    samples = _samples(api.client.get("/metrics").text)
    assert samples[("supportbot_http_requests_total", (("method", "POST"), ("route", "/v1/chat"), ("status", "200")))] == 2
    assert samples[("supportbot_http_requests_total",
                    (("method", "GET"), ("route", "/v1/conversations"), ("status", "401")))] == 1
    assert samples[("supportbot_http_request_duration_seconds_count", (("method", "POST"), ("route", "/v1/chat")))] == 2
    assert samples[("supportbot_chat_turns_total", (("status", "answered"),))] == 2
    assert samples[("supportbot_generated_tokens_total", (("generator", "extractive"),))] > 0
    assert samples[("supportbot_abstentions_total", (("reason", "low_retrieval_support"),))] == 1
    assert samples[("supportbot_handoffs_total", ())] == 1
    assert samples[("supportbot_answer_duration_seconds_count", (("generator", "extractive"),))] == 2
    assert samples[("supportbot_generator_in_flight", ())] == 0
    other_samples = _samples(other.client.get("/metrics").text)  # each app has its own registry
    assert ("supportbot_http_requests_total",
            (("method", "POST"), ("route", "/v1/chat"), ("status", "200"))) not in other_samples
