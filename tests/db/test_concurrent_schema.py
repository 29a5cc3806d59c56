"""Processes that start together against one database: API replicas and workers all migrate the
schema and the workers all create APScheduler's job table at start. Exactly one of them may do
the work; the others must wait and then find it done, not fail."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import Engine, inspect

from core.db.engine import build_engine
from core.db.migrate import create_foreign_table, current_revision, head_revision
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_workers_starting_together_create_the_job_table_once(engine: Engine) -> None:
    starters = 6
    barrier = threading.Barrier(starters)
    errors: list[BaseException] = []

    def start() -> None:
        table = SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs").jobs_t  # each worker its own
        barrier.wait()
        try:
            create_foreign_table(engine, table)
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert "apscheduler_jobs" in inspect(engine).get_table_names()
    store = SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs")
    store.start(None, "default")  # type: ignore[arg-type]  # finds its table: nothing to create
    assert store.get_all_jobs() == []


@pytest.mark.slow
def test_processes_migrating_a_new_database_together_all_reach_head(db_settings: Settings) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SUPPORTBOT_")}
    env["SUPPORTBOT_DATA_DIR"] = str(db_settings.data_dir)
    if db_settings.database.url is not None:
        env["SUPPORTBOT_DATABASE__URL"] = db_settings.database.url.get_secret_value()
    processes = [subprocess.Popen([sys.executable, "-m", "api.cli", "db", "upgrade"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    outputs = [process.communicate(timeout=180)[0].decode(errors="replace") for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], "\n".join(outputs)[-3000:]
    engine = build_engine(db_settings)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
