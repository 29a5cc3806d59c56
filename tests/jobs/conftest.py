from __future__ import annotations

from tests.db.conftest import db_settings, engine, session

__all__ = ["db_settings", "engine", "session"]
