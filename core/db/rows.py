"""Rows written with Core statements on the chat path, where the ORM's unit of work and model
validation cost more than the write itself (a pending turn took 1.45 ms through the ORM and 0.69 ms
this way; README, "API overhead"). The values are the model's own defaults plus what the caller
gives, so a row written here equals one written through the model."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any, cast

from sqlalchemy import Table
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


@cache
def _defaults(model: type[SQLModel]) -> tuple[tuple[str, Callable[[], Any]], ...]:
    """Each defaulted field with a function giving its default. Resolved once per model: pydantic's
    ``get_default`` inspects the factory's signature on every call, which cost more than the
    values themselves on the chat path."""
    resolved: list[tuple[str, Callable[[], Any]]] = []
    for name, field in model.model_fields.items():
        if field.is_required():
            continue
        factory = field.default_factory
        if factory is None or field.default_factory_takes_validated_data:
            resolved.append((name, partial(field.get_default, call_default_factory=True, validated_data={})))
        else:
            resolved.append((name, cast(Callable[[], Any], factory)))
    return tuple(resolved)


def row_of(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """Every column of ``model``: ``values``, and the field defaults (factories called) for the rest."""
    row = {name: default() for name, default in _defaults(model) if name not in values}
    row.update(values)
    return row
