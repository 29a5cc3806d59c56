"""Alembic environment: the engine comes from the caller (``core.db.migrate``) or the settings."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.db.tables  # noqa: F401 - registers the tables on SQLModel.metadata
from core.db.engine import build_engine
from core.db.migrate import owned_by_migrations
from core.settings import get_settings

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    engine = context.config.attributes.get("engine") or build_engine(get_settings())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                          include_object=owned_by_migrations)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `supportbot db upgrade`")
run_migrations()
