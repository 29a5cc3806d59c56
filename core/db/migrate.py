"""Alembic, driven from Python: ``upgrade(engine)`` brings a database to the newest schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.schema import CreateTable

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

FOREIGN_TABLES = frozenset({"apscheduler_jobs"})
"""Tables in our database that another library owns (APScheduler's job store creates its own):
migrations neither create nor drop them."""


SCHEMA_LOCK_KEY = 0x53555050
"""The PostgreSQL advisory lock that serialises schema changes between our processes ("SUPP")."""


def lock_schema(connection: Connection) -> None:
    """Wait until no other process changes the schema, for the rest of ``connection``'s transaction.

    API replicas and workers started together against a new database would otherwise run the
    same migrations, or create the same table, at once, and all but one fail (even ``CREATE TABLE
    IF NOT EXISTS`` races on PostgreSQL's catalogue). PostgreSQL: a transaction-level advisory
    lock. SQLite: the database's write lock, taken now; Python's sqlite3 only opens a transaction
    before DML, so DDL would otherwise run outside one, statement by statement.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None and not dbapi_connection.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_foreign_table(engine: Engine, table: Table) -> None:
    """Create one of :data:`FOREIGN_TABLES` unless it exists, safely when several processes start at once."""
    with engine.begin() as connection:
        lock_schema(connection)
        connection.execute(CreateTable(table, if_not_exists=True))


def owned_by_migrations(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object`` hook: leave :data:`FOREIGN_TABLES` (and their indexes) alone."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table not in FOREIGN_TABLES


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
