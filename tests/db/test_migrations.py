"""Alembic migrations and the engine, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, SQLModel, select

from core.db.engine import build_engine, database_url
from core.db.migrate import current_revision, downgrade, head_revision, owned_by_migrations, upgrade
from core.db.tables import ApiKey
from core.errors import ConfigError
from core.settings import DatabaseSettings, Settings

TABLES = {"tenant", "api_key", "conversation", "turn", "feedback", "document_source", "job_record"}


def test_upgrade_creates_every_table_at_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_the_scheduler_job_table_is_left_to_apscheduler(engine: Engine) -> None:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs").start(None, "default")  # type: ignore[arg-type]
    with engine.connect() as connection:
        unfiltered = MigrationContext.configure(connection, opts={"compare_type": True})
        assert any(change[0] == "remove_table" for change in compare_metadata(unfiltered, SQLModel.metadata))
        filtered = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                "include_object": owned_by_migrations})
        assert compare_metadata(filtered, SQLModel.metadata) == []


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert current_revision(engine) == head_revision()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = build_engine(Settings(data_dir=tmp_path / "data"))
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    assert (tmp_path / "data" / "supportbot.db").exists()
    engine.dispose()


@pytest.mark.parametrize("raw", ["postgresql://u:p@db:5432/sb", "postgres://u:p@db:5432/sb",
                                 "postgresql+psycopg://u:p@db:5432/sb"])
def test_postgresql_urls_use_psycopg(raw: str, tmp_path: Path) -> None:
    url = database_url(Settings(data_dir=tmp_path, database=DatabaseSettings(url=SecretStr(raw))))
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.database, url.username) == ("db", "sb", "u")


@pytest.mark.parametrize("raw", ["mysql://u@db/sb", "not a url"])
def test_unsupported_database_url_is_a_config_error(raw: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"database\.url"):
        database_url(Settings(data_dir=tmp_path, database=DatabaseSettings(url=SecretStr(raw))))


def test_0004_keeps_existing_keys_full_and_its_downgrade_revokes_public_keys(engine: Engine) -> None:
    downgrade(engine, "0003")
    assert "scope" not in {column["name"] for column in inspect(engine).get_columns("api_key")}
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO tenant (id, name, created_at) VALUES ('acme', '', CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO api_key (tenant_id, name, prefix, key_hash, admin, created_at) "
                                "VALUES ('acme', 'old', 'sb_old', 'h-old', :no, CURRENT_TIMESTAMP)"), {"no": False})
    upgrade(engine, "0004")
    with engine.begin() as connection:
        assert connection.execute(text("SELECT scope FROM api_key WHERE prefix = 'sb_old'")).scalar() == "full"
        connection.execute(text("INSERT INTO api_key (tenant_id, name, prefix, key_hash, admin, scope, created_at) "
                                "VALUES ('acme', 'widget', 'sbp_new', 'h-new', :no, 'public', CURRENT_TIMESTAMP)"),
                           {"no": False})
    # Downgraded, a public key would be a full one: it is revoked instead; full keys are untouched.
    downgrade(engine, "0003")
    with engine.connect() as connection:
        revoked: dict[str, object] = {row.prefix: row.revoked_at
                                      for row in connection.execute(text("SELECT prefix, revoked_at FROM api_key"))}
    assert revoked["sb_old"] is None and revoked["sbp_new"] is not None
    upgrade(engine, "0004")
    with Session(engine) as session:
        rows = {row.prefix: row for row in session.exec(select(ApiKey))}
    assert rows["sbp_new"].revoked_at is not None and rows["sbp_new"].scope == "full"
    assert rows["sb_old"].revoked_at is None
