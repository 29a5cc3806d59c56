"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

JSONColumn = JSON().with_variant(JSONB(), "postgresql")
"""JSON documents: ``jsonb`` on PostgreSQL, text on SQLite."""


def utc_now() -> datetime:
    return datetime.now(UTC)


# Default factories for JSON columns. Not the builtins `list` and `dict`: pydantic inspects a
# factory's signature on every model construction, and `inspect.signature(list)` parses a text
# signature (60 us, measured) where a Python function's costs 4 us; a turn is built on every chat.
def empty_list() -> list[Any]:
    return []


def empty_dict() -> dict[str, Any]:
    return {}


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored and returned as aware UTC datetimes. SQLite keeps no time zone, so
    values are converted to UTC before they are written and marked UTC when they are read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
