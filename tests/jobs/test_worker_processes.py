"""Real ``supportbot worker`` processes against a PostgreSQL schema: two workers never run the same
job at once, and a worker killed mid re-index leaves nothing a later run cannot repair."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import select

from core.db.engine import build_engine, open_session
from core.db.migrate import upgrade
from core.db.queries.job_locks import live_lock_owner
from core.db.queries.tenants import create_tenant
from core.db.tables import JobRecord
from core.settings import DatabaseSettings, Settings
from knowledge.document_store import build_document_store
from knowledge.retrieval import metadata_filters
from tests.postgres import temporary_schema

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SAMPLES = Path(__file__).resolve().parents[2] / "knowledge" / "samples"
SUPPORTBOT = [sys.executable, "-m", "api.cli"]


@pytest.fixture
def database_url() -> Iterator[str]:
    with temporary_schema() as url:
        yield url


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = build_engine(Settings(data_dir=tmp_path, database=DatabaseSettings(url=SecretStr(database_url))))
    upgrade(engine)
    with open_session(engine) as session:
        create_tenant(session, tenant_id="acme")
    yield engine
    engine.dispose()


@pytest.fixture
def manuals(tmp_path: Path) -> Path:
    target = tmp_path / "manuals"
    shutil.copytree(SAMPLES, target, ignore=shutil.ignore_patterns("*.py", "README.md"))
    return target


def _env(data_dir: Path, database_url: str | None, manuals: Path, **worker: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SUPPORTBOT_")}
    env.update({"SUPPORTBOT_DATA_DIR": str(data_dir), "SUPPORTBOT_WORKER__POLL_INTERVAL_S": "0.5",
                "SUPPORTBOT_WORKER__SOURCES": json.dumps([{
                    "name": "docs", "targets": [str(manuals)], "tenant": "acme", "prune": True,
                    "schedule": {"interval_minutes": 0.02}}])})
    if database_url:
        env["SUPPORTBOT_DATABASE__URL"] = database_url
    env.update({f"SUPPORTBOT_WORKER__{key.upper()}": value for key, value in worker.items()})
    return env


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*SUPPORTBOT, "worker"], env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def _runs(engine: Engine) -> list[JobRecord]:
    with open_session(engine) as session:
        return sorted(session.exec(select(JobRecord).where(JobRecord.kind == "reindex")),
                      key=lambda r: (r.started_at is None, r.started_at))


def _chunk_ids(data_dir: Path) -> set[str]:
    store = build_document_store(Settings(data_dir=data_dir))
    return {doc.id for doc in store.filter_documents(filters=metadata_filters(tenant="acme"))}


def test_two_workers_never_run_the_same_job_at_once(engine: Engine, database_url: str, manuals: Path,
                                                    tmp_path: Path) -> None:
    env = _env(tmp_path / "data", database_url, manuals, lock_lease_s="5")
    workers = [_start_worker(env, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        _wait_for(lambda: sum(r.status == "succeeded" for r in _runs(engine)) >= 4, 240, "4 finished re-index runs")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=120) for worker in workers]
    logs = "".join((tmp_path / f"worker{i}.log").read_text() for i in range(2))
    assert codes == [0, 0], logs[-3000:]  # clean shutdown on SIGTERM

    runs = [r for r in _runs(engine) if r.started_at is not None]
    assert all(r.status == "succeeded" and r.finished_at is not None for r in runs), [(r.status, r.error) for r in runs]
    for earlier, later in pairwise(runs):
        assert earlier.finished_at is not None and later.started_at is not None
        assert later.started_at >= earlier.finished_at, f"runs {earlier.id} and {later.id} overlap"
    # The workers did contend: one found the job running in the other and stood aside.
    assert "running elsewhere; skipped" in logs
    assert all(r.requested_by == "scheduler" and r.lock_name == "reindex" for r in runs)


def test_a_killed_reindex_is_marked_failed_and_the_next_run_converges(engine: Engine, database_url: str,
                                                                       manuals: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir, database_url, manuals, lock_lease_s="3")
    first = subprocess.run([*SUPPORTBOT, "jobs", "run", "reindex", "--source", "docs"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    # Change the manuals so the killed run has real work: one edited, one removed, one added.
    (manuals / "nimbus-r7" / "warranty.txt").write_text("Warranty: two years, parts and labour.\n", encoding="utf-8")
    (manuals / "lumen-brew3").rename(tmp_path / "moved-away")
    shutil.copy(SAMPLES / "nimbus-r7" / "user-guide.md", manuals / "nimbus-r7" / "guide-copy-2.md")
    with (manuals / "nimbus-r7" / "guide-copy-2.md").open("a", encoding="utf-8") as extra:
        extra.write("\n## Appendix\n\nA section only this copy has.\n")

    worker = _start_worker(env, tmp_path / "killed.log")
    try:
        _wait_for(lambda: any(r.status == "running" for r in _runs(engine)), 120, "a running re-index")
        killed = next(r for r in _runs(engine) if r.status == "running")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    with open_session(engine) as session:
        _wait_for(lambda: live_lock_owner(session, name="reindex") is None, 30, "the killed worker's lease to expire")
    again = subprocess.run([*SUPPORTBOT, "jobs", "run", "reindex", "--source", "docs"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr

    with open_session(engine) as session:
        abandoned = session.get(JobRecord, killed.id)
    assert abandoned is not None and abandoned.status == "failed"
    assert f"abandoned: worker {killed.worker} " in (abandoned.error or "")

    clean_dir = tmp_path / "clean"
    clean = subprocess.run([*SUPPORTBOT, "ingest", str(manuals), "--tenant", "acme", "--prune"],
                           env=_env(clean_dir, None, manuals), cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert clean.returncode == 0, clean.stderr
    expected = _chunk_ids(clean_dir)
    assert expected and _chunk_ids(data_dir) == expected
