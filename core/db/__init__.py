"""Persistence: SQLModel tables (:mod:`core.db.tables`), the engine (:mod:`core.db.engine`), Alembic
migrations (:mod:`core.db.migrate`) and every query (:mod:`core.db.queries`)."""
