"""``supportbot jobs run KIND`` records a run through the lock; ``supportbot jobs`` lists runs."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from api.cli import main
from core.db.engine import build_engine, open_session
from core.db.migrate import upgrade
from core.db.queries.conversations import create_conversation
from core.db.queries.job_locks import try_acquire_lock
from core.db.queries.jobs import list_jobs
from core.db.queries.tenants import create_tenant
from core.db.tables import JobStatus
from core.db.types import utc_now
from core.settings import Settings, get_settings
from jobs.runner import SCHEDULER, JobRunner


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for key in ("DATABASE__URL", "WORKER__SOURCES"):
        monkeypatch.delenv(f"SUPPORTBOT_{key}", raising=False)
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPPORTBOT_WORKER__RETENTION__DAYS", "30")
    get_settings.cache_clear()
    engine = build_engine(Settings(data_dir=tmp_path / "data"))
    upgrade(engine)
    with open_session(engine) as session:
        for tenant in ("acme", "globex"):
            create_tenant(session, tenant_id=tenant)
            old = create_conversation(session, tenant_id=tenant, channel="web")
            old.updated_at = utc_now() - timedelta(days=31)
            session.add(old)
        session.commit()
    engine.dispose()
    yield tmp_path / "data"
    get_settings.cache_clear()


def test_jobs_run_and_list(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "run", "retention", "--tenant", "acme"]) == 0
    assert "retention for acme: succeeded" in capsys.readouterr().out
    assert main(["jobs", "run", "retention"]) == 0  # every tenant when none is named
    out = capsys.readouterr().out
    assert "retention for globex: succeeded" in out and "retention for acme: succeeded" in out

    assert main(["jobs", "--json", "--kind", "retention", "--status", "succeeded"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert sorted((r["tenant_id"], r["counts"]["deleted"]["conversations"]) for r in runs) == [
        ("acme", 0), ("acme", 1), ("globex", 1)]
    assert {r["requested_by"] for r in runs} == {"cli"}
    assert main(["jobs", "--status", "failed"]) == 0
    assert capsys.readouterr().out.strip() == "no job records"


def test_jobs_run_respects_a_lock_held_by_a_worker(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = build_engine(Settings(data_dir=data_dir))
    with open_session(engine) as session:
        try_acquire_lock(session, name="retention:acme", owner="busy-worker", lease_s=60)
    engine.dispose()
    assert main(["jobs", "run", "retention", "--tenant", "acme"]) == 1
    assert "already running elsewhere" in capsys.readouterr().err
    assert main(["jobs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_jobs_run_refuses_an_unknown_source(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "run", "reindex", "--source", "nope"]) == 2
    assert "no source named 'nope' in worker.sources" in capsys.readouterr().err


def test_a_source_of_a_missing_tenant_is_refused_naming_the_key(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SUPPORTBOT_WORKER__SOURCES", json.dumps([
        {"name": "a", "targets": ["x"], "tenant": "acme", "schedule": {"interval_minutes": 5}},
        {"name": "b", "targets": ["y"], "tenant": "nobody", "schedule": {"cron": "0 3 * * *"}}]))
    get_settings.cache_clear()
    assert main(["jobs", "run", "retention", "--tenant", "acme"]) == 2
    assert "worker.sources[1].tenant: tenant 'nobody' does not exist" in capsys.readouterr().err


def _records(data_dir: Path) -> list[tuple[str, str, str, int]]:
    """(tenant, kind, status, attempt) of every job record, sorted."""
    engine = build_engine(Settings(data_dir=data_dir))
    with open_session(engine) as session:
        rows = list_jobs(session, tenant_id=None, limit=100, offset=0)[0]
    engine.dispose()
    return sorted((r.tenant_id, r.kind, r.status, r.attempt) for r in rows)


@pytest.mark.parametrize("argv", [["jobs", "--tenant", "globex", "run", "retention"],
                                  ["jobs", "run", "retention", "--tenant", "globex"]])
def test_the_tenant_may_be_named_before_or_after_run(data_dir: Path, argv: list[str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # `jobs --tenant X run K` once ran K for every tenant: run's own --tenant (default None)
    # overwrote the value parsed by `jobs`.
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("retention for globex: succeeded")
    assert _records(data_dir) == [("globex", "retention", "succeeded", 1)]


def test_a_source_of_another_tenant_is_refused(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SUPPORTBOT_WORKER__SOURCES", json.dumps([
        {"name": "a", "targets": ["x"], "tenant": "acme", "schedule": {"interval_minutes": 5}}]))
    get_settings.cache_clear()
    assert main(["jobs", "--tenant", "globex", "run", "reindex", "--source", "a"]) == 2
    assert "source 'a' belongs to tenant 'acme', not 'globex'" in capsys.readouterr().err


def _unreachable_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """A source whose only target is a closed port: a failure that is retried when unattended."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SUPPORTBOT_WORKER__SOURCES", json.dumps([
        {"name": "site", "targets": [f"http://127.0.0.1:{port}/manual.txt"], "tenant": "acme",
         "schedule": {"interval_minutes": 60}}]))
    monkeypatch.setenv("SUPPORTBOT_WORKER__MAX_ATTEMPTS", "3")
    get_settings.cache_clear()


def test_a_failed_cli_run_is_reported_and_not_retried_unlike_a_scheduled_one(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _unreachable_source(monkeypatch)

    assert main(["jobs", "run", "reindex", "--source", "site"]) == 1

    captured = capsys.readouterr()
    assert captured.out.startswith("reindex for acme: failed (job ") and "nothing could be read" in captured.out
    assert "not retried automatically" in captured.err
    assert _records(data_dir) == [("acme", "reindex", "failed", 1)]

    # The same failure in a scheduled run (same records, same lock) queues attempt 2 for the worker.
    engine = build_engine(get_settings())
    outcome = JobRunner(get_settings(), engine).run_now("reindex", tenant="acme", payload={"source": "site"},
                                                        requested_by=SCHEDULER)
    engine.dispose()
    assert outcome.status is JobStatus.FAILED and outcome.retry_at is not None
    assert _records(data_dir) == [("acme", "reindex", "failed", 1), ("acme", "reindex", "failed", 1),
                                  ("acme", "reindex", "queued", 2)]


def test_sigterm_ends_a_cli_run_recorded_as_failed_with_its_lock_released(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def terminated(*_args: object) -> dict[str, object]:
        os.kill(os.getpid(), signal.SIGTERM)  # as `docker stop` would, while the job runs
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not interrupt the run")

    monkeypatch.setattr("jobs.runner.run_task", terminated)
    handler_before = signal.getsignal(signal.SIGTERM)

    assert main(["jobs", "run", "retention", "--tenant", "acme"]) == 130

    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == handler_before
    engine = build_engine(Settings(data_dir=data_dir))
    with open_session(engine) as session:
        (record,) = list_jobs(session, tenant_id="acme", limit=10, offset=0)[0]
        assert try_acquire_lock(session, name="retention:acme", owner="worker-2", lease_s=60)
    engine.dispose()
    assert (record.status, record.attempt) == ("failed", 1) and "interrupted" in (record.error or "")
    # Nothing is left for a worker: neither a running record to call abandoned nor a retry.
    JobRunner(Settings(data_dir=data_dir), build_engine(Settings(data_dir=data_dir))).fail_abandoned()
    assert _records(data_dir) == [("acme", "retention", "failed", 1)]
