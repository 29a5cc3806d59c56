"""Rows written with Core statements on the chat path, where the ORM's unit of work and model
validation cost more than the write itself (a pending turn took 1.45 ms through the ORM and 0.69 ms
this way; README, "API overhead"). The values are the model's own defaults plus what the caller
gives, so a row written here equals one written through the model."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


@cache
def _defaulted_fields(model: type[SQLModel]) -> tuple[str, ...]:
    return tuple(name for name, field in model.model_fields.items() if not field.is_required())


def row_of(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """Every column of ``model``: ``values``, and the field defaults (factories called) for the rest."""
    fields = model.model_fields
    row = {name: fields[name].get_default(call_default_factory=True)
           for name in _defaulted_fields(model) if name not in values}
    row.update(values)
    return row
