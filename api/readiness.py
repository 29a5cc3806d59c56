"""Readiness checks: each returns "ok" or the reason it failed."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from api.state import AppState
from core.errors import SupportbotError
from knowledge.generation.remote import RemoteGenerator


def readiness_checks(state: AppState) -> dict[str, str]:
    return {"database": _database(state), "store": _store(state), "generator": _generator(state)}


def _database(state: AppState) -> str:
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ready", with its reason
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _store(state: AppState) -> str:
    try:
        state.store.count_documents()
    except SupportbotError as exc:
        return exc.message
    except Exception as exc:  # noqa: BLE001 - Elasticsearch client errors vary by version
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _generator(state: AppState) -> str:
    generator = state.generator
    if not isinstance(generator, RemoteGenerator):
        return "ok"  # in-process generators were loaded by warm_up() at start
    url = state.settings.generator.remote.url.rstrip("/") + "/health"
    try:
        response = httpx.get(url, timeout=2.0)
    except httpx.HTTPError as exc:
        return f"{url}: {exc}"
    return "ok" if response.status_code < 400 else f"{url}: HTTP {response.status_code}"
