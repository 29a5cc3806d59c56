"""The SQLAlchemy engine from the settings: SQLite in ``data_dir`` by default, PostgreSQL (psycopg 3)
when ``database.url`` is set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlmodel import Session

from core.errors import ConfigError
from core.settings import Settings

SQLITE_FILE = "supportbot.db"


def database_url(settings: Settings) -> URL:
    """The URL to connect to; ``postgresql://`` and ``postgres://`` are rewritten to psycopg 3."""
    if settings.database.url is None or not settings.database.url.get_secret_value():
        return make_url(f"sqlite:///{(settings.data_dir / SQLITE_FILE).resolve()}")
    raw = settings.database.url.get_secret_value()
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw.removeprefix("postgres://")
    try:
        url = make_url(raw)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError or ValueError
        raise ConfigError(f"database.url is not a database URL: {exc}") from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"database.url: only sqlite and postgresql are supported, not {url.get_backend_name()}")
    return url


def build_engine(settings: Settings) -> Engine:
    """An engine for the configured database. SQLite runs in WAL mode with foreign keys enforced
    and a busy timeout, so the API's threads and the worker can share one file."""
    url = database_url(settings)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _sqlite_pragmas(engine, settings.database.sqlite_busy_timeout_ms)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=settings.database.pool_size)


def _sqlite_pragmas(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@contextmanager
def open_session(engine: Engine) -> Iterator[Session]:
    """A session that expires nothing on commit, so rows returned by queries stay readable."""
    with Session(engine, expire_on_commit=False) as session:
        yield session
