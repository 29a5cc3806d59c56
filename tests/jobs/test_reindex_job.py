"""Re-index runs: an unreachable source fails its own run only, is recorded with the error, and is
retried (with backoff) until it comes back (SQLite and PostgreSQL)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from core.db.engine import open_session
from core.db.queries import jobs as job_queries
from core.db.queries.tenants import create_tenant
from core.db.tables import JobRecord, JobStatus
from core.db.types import utc_now
from core.settings import Settings, WorkerSettings
from jobs.runner import JobRunner
from knowledge.document_store import build_document_store
from knowledge.retrieval import metadata_filters

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "nimbus-r7"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def port() -> int:
    return _free_port()


@pytest.fixture
def serve(port: int) -> Iterator[Callable[[], None]]:
    servers: list[ThreadingHTTPServer] = []

    def start() -> None:
        server = ThreadingHTTPServer(("127.0.0.1", port), partial(SimpleHTTPRequestHandler, directory=str(SAMPLE)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _settings(db_settings: Settings, port: int, **worker: object) -> Settings:
    sources = [{"name": "site", "targets": [f"http://127.0.0.1:{port}/warranty.txt"], "tenant": "acme",
                "schedule": {"interval_minutes": 60}},
               {"name": "other", "targets": [str(SAMPLE / "warranty.txt")], "tenant": "globex",
                "schedule": {"interval_minutes": 60}}]
    return db_settings.model_copy(update={"worker": WorkerSettings.model_validate(
        {"sources": sources, "max_attempts": 3, "backoff_s": 30, **worker})})


def _chunks(settings: Settings, tenant: str) -> set[str]:
    return {d.id for d in build_document_store(settings).filter_documents(filters=metadata_filters(tenant=tenant))}


@pytest.mark.slow
def test_an_unreachable_source_fails_its_run_only_and_the_retry_succeeds(
        engine: Engine, db_settings: Settings, port: int, serve: Callable[[], None]) -> None:
    with open_session(engine) as session:
        create_tenant(session, tenant_id="acme")
        create_tenant(session, tenant_id="globex")
    settings = _settings(db_settings, port)
    runner = JobRunner(settings, engine)

    down = runner.run_now("reindex", tenant="acme", payload={"source": "site"}, requested_by="scheduler")
    other = runner.run_now("reindex", tenant="globex", payload={"source": "other"}, requested_by="scheduler")

    assert down.status is JobStatus.FAILED
    assert "source 'site': nothing could be read" in (down.error or "") and str(port) in (down.error or "")
    assert other.status is JobStatus.SUCCEEDED and _chunks(settings, "globex")
    assert runner.poll_once() == []  # the retry waits for its backoff
    with open_session(engine) as session:
        (retry,) = job_queries.due_jobs(session, now=utc_now() + timedelta(seconds=31))
        failed = job_queries.get_job(session, job_id=down.job_id)  # type: ignore[arg-type]
    assert (retry.attempt, retry.payload["source"]) == (2, "site")
    assert failed.counts == {} and failed.finished_at is not None

    serve()
    with open_session(engine) as session:  # the backoff has passed
        row = job_queries.get_job(session, job_id=retry.id)
        row.not_before = utc_now() - timedelta(seconds=1)
        session.add(row)
        session.commit()
    (recovered,) = runner.poll_once()

    assert recovered.status is JobStatus.SUCCEEDED and recovered.job_id == retry.id
    assert _chunks(settings, "acme")
    with open_session(engine) as session:
        done = job_queries.get_job(session, job_id=retry.id)
        statuses = sorted((r.attempt, r.status) for r in session.exec(select(JobRecord).where(
            JobRecord.tenant_id == "acme")))
    assert done.counts["site"]["new"] == 1
    assert statuses == [(1, "failed"), (2, "succeeded")]
