"""Alembic environment: the engine comes from the caller (``core.db.migrate``) or the settings."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.db.tables  # noqa: F401 - registers the tables on SQLModel.metadata
from core.db.engine import build_engine
from core.db.migrate import lock_schema, owned_by_migrations
from core.settings import get_settings

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    engine = context.config.attributes.get("engine") or build_engine(get_settings())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                          include_object=owned_by_migrations,
                          # one transaction for the whole upgrade on SQLite too (Alembic's default there
                          # commits after each migration, which would release the schema lock between
                          # steps of a plan another process has already read)
                          transactional_ddl=True)
        with context.begin_transaction():
            lock_schema(connection)  # a second process waits here, then finds the schema at head
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `supportbot db upgrade`")
run_migrations()
