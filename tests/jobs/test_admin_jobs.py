"""Worker runs show in GET /v1/admin/jobs and in ``supportbot jobs``, with attempt, counts and worker."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.db.engine import open_session
from core.db.queries.conversations import create_conversation
from core.db.tables import JobStatus
from core.db.types import utc_now
from core.settings import WorkerSettings
from jobs.runner import JobRunner
from tests.api.conftest import Api, MakeApi, indexed_template, make_api

__all__ = ["indexed_template", "make_api"]

pytestmark = pytest.mark.slow


def test_scheduled_and_queued_runs_are_listed_with_their_details(make_api: MakeApi) -> None:
    api: Api = make_api()
    engine = api.state.engine
    with open_session(engine) as session:
        old = create_conversation(session, tenant_id="acme", channel="web")
        old.updated_at = utc_now() - timedelta(days=100)
        session.add(old)
        session.commit()
    queued = api.client.post("/v1/admin/reindex", json={}, headers=api.headers("acme-admin")).json()
    settings = api.state.settings.model_copy(update={"worker": WorkerSettings.model_validate(
        {"retention": {"days": 30}, "max_attempts": 1})})
    runner = JobRunner(settings, engine, owner="worker-1")

    assert runner.run_now("retention", tenant="acme", payload={}, requested_by="scheduler").status is JobStatus.SUCCEEDED
    (reindex,) = runner.poll_once()  # no worker.sources for acme: a configuration error, recorded
    assert reindex.job_id is not None and str(reindex.job_id) == queued["id"]

    listed = api.client.get("/v1/admin/jobs", headers=api.headers("acme-admin")).json()["items"]
    by_kind = {item["kind"]: item for item in listed}
    assert by_kind["retention"]["requested_by"] == "scheduler" and by_kind["retention"]["status"] == "succeeded"
    assert by_kind["retention"]["counts"]["deleted"]["conversations"] == 1
    assert (by_kind["retention"]["attempt"], by_kind["retention"]["worker"]) == (1, "worker-1")
    assert by_kind["reindex"]["status"] == "failed"
    assert "no source of tenant 'acme'" in by_kind["reindex"]["error"]
    only = api.client.get("/v1/admin/jobs", params={"kind": "retention", "status": "succeeded"},
                          headers=api.headers("acme-admin")).json()
    assert only["total"] == 1
