"""``supportbot jobs run KIND`` records a run through the lock; ``supportbot jobs`` lists runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from api.cli import main
from core.db.engine import build_engine, open_session
from core.db.migrate import upgrade
from core.db.queries.conversations import create_conversation
from core.db.queries.job_locks import try_acquire_lock
from core.db.queries.tenants import create_tenant
from core.db.types import utc_now
from core.settings import Settings, get_settings


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
