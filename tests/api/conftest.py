"""API test fixtures: the sample manuals indexed once per session (tenant ``acme``), copied into
each app's own data directory; apps with the real answer service and the extractive generator, or
with a generator double given through ``create_app(answer_service=...)``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from api.app import create_app
from api.state import AppState
from bot.answer_service import AnswerService
from core.db.engine import open_session
from core.db.queries.api_keys import create_api_key
from core.db.queries.tenants import create_tenant, get_tenant
from core.db.tables import Conversation, Feedback, KeyScope, Turn
from core.settings import Settings
from knowledge.document_store import build_document_store
from knowledge.generation.base import ChatGenerator
from knowledge.indexing import Indexer, SourceMeta
from knowledge.retrieval import KnowledgeSearch
from tests.api.live_server import CHROMIUM, CHROMIUM_ARGS, LiveApi, serve_api
from tests.conftest import SAMPLES
from tests.postgres import temporary_schema

RESET_QUESTION = "How do I factory reset the Nimbus R7 router?"


@pytest.fixture(scope="session")
def indexed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose index holds the sample manuals of tenant ``acme``."""
    data_dir = tmp_path_factory.mktemp("template") / "data"
    settings = Settings(data_dir=data_dir)
    store = build_document_store(settings)
    indexer = Indexer(settings, store)
    for product in ("nimbus-r7", "lumen-brew3"):
        summary = indexer.ingest([str(SAMPLES / product)], SourceMeta(tenant="acme", product=product))
        assert not summary.failed, summary.failed
    return data_dir


@dataclass
class Api:
    """A running app with tenants ``acme`` (the sample manuals) and ``globex`` (no documents); keys
    ``acme``, ``globex``, ``acme-admin`` and ``acme-public`` (the widget's kind)."""

    client: TestClient
    app: FastAPI
    keys: dict[str, str]

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.supportbot
        return state

    def headers(self, who: str = "acme", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def new_key(self, tenant: str, *, admin: bool = False, public: bool = False) -> str:
        scope = KeyScope.PUBLIC if public else KeyScope.FULL
        with open_session(self.state.engine) as session:
            return create_api_key(session, tenant_id=tenant, admin=admin, scope=scope)[1]


MakeApi = Callable[..., Api]


@pytest.fixture
def make_api(indexed_template: Path, tmp_path: Path) -> Iterator[MakeApi]:
    """``make_api(double=None, database="sqlite", **settings)``: an app over a private copy of the
    indexed manuals. Settings keys are nested dicts, e.g. ``api={"rate_limit_burst": 2}``.
    ``database`` is "sqlite" or "postgresql" (a database of the app's own), or database settings
    (``shared_database``) that several apps share, as the processes of one deployment do."""
    stack = ExitStack()
    counter = iter(range(1000))

    def make(double: ChatGenerator | None = None, database: str | dict[str, Any] = "sqlite",
             **overrides: Any) -> Api:
        data_dir = tmp_path / f"app{next(counter)}"
        shutil.copytree(indexed_template, data_dir)
        fields: dict[str, Any] = {"data_dir": data_dir, "generator": {"backend": "extractive"}, **overrides}
        if isinstance(database, dict):
            fields["database"] = database
        elif database == "postgresql":
            fields["database"] = {"url": SecretStr(stack.enter_context(temporary_schema()))}
        settings = Settings(**fields)
        service = None
        if double is not None:
            service = AnswerService(settings, KnowledgeSearch(settings, build_document_store(settings)), double)
        app = create_app(settings, answer_service=service)
        client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
        api = Api(client=client, app=app, keys={})
        with open_session(api.state.engine) as session:
            for tenant in ("acme", "globex"):
                if get_tenant(session, tenant_id=tenant) is None:  # made by an earlier app on a shared database
                    create_tenant(session, tenant_id=tenant)
        api.keys = {"acme": api.new_key("acme"), "globex": api.new_key("globex"),
                    "acme-admin": api.new_key("acme", admin=True), "acme-public": api.new_key("acme", public=True)}
        return api

    yield make
    stack.close()


@pytest.fixture
def api(make_api: MakeApi) -> Api:
    return make_api()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The settings of one database for several apps (``make_api(database=shared_database)``): a
    SQLite file, or a PostgreSQL schema. Request it before ``make_api``, so that it outlives the apps."""
    if request.param == "sqlite":
        yield {"url": SecretStr(f"sqlite:///{(tmp_path / 'shared.db').resolve()}")}
        return
    with temporary_schema() as url:
        yield {"url": SecretStr(url)}


def conversation_log(api: Api) -> dict[str, int]:
    """How many conversations, turns and feedback rows the app's database holds (all tenants)."""
    with open_session(api.state.engine) as session:
        return {table.__name__: len(session.exec(select(table)).all()) for table in (Conversation, Turn, Feedback)}


EMPTY_LOG = {"Conversation": 0, "Turn": 0, "Feedback": 0}


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, count: int = 1, timeout_s: float = 60.0) -> None:
    """Wait until ``count`` log records contain ``text`` (lazy listeners run after the acknowledgement)."""
    deadline = time.monotonic() + timeout_s
    while sum(text in record.getMessage() for record in caplog.records) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} log record(s) with {text!r} expected: {[r.getMessage() for r in caplog.records]}")
        time.sleep(0.05)


HOSTILE_DOCUMENT = """Zorblax sensor calibration

To calibrate the Zorblax sensor, hold the calibrate button <script>window.__pwned=1</script> for ten seconds.
If Zorblax sensor calibration fails, <img src=x onerror="window.__pwned=1"> replace the Zorblax sensor battery.
The Zorblax sensor calibration chart is at <img src="http://evil.example.test/track.png"> and [open the chart](javascript:window.__pwned=1) for the Zorblax sensor.
"""
HOSTILE_QUESTION = "How do I calibrate the Zorblax sensor?"


@pytest.fixture(scope="session")
def live_api(indexed_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """The real app on a loopback port (uvicorn in a thread) over the sample manuals plus a hostile
    document (script tags, event handlers, a javascript: link, an external image) of tenant ``acme``."""
    data_dir = tmp_path_factory.mktemp("live") / "data"
    shutil.copytree(indexed_template, data_dir)
    hostile = data_dir.parent / "zorblax.txt"
    hostile.write_text(HOSTILE_DOCUMENT, encoding="utf-8")
    settings = Settings(data_dir=data_dir)
    summary = Indexer(settings, build_document_store(settings)).ingest(
        [str(hostile)], SourceMeta(tenant="acme", product="zorblax"))
    assert not summary.failed, summary.failed
    with serve_api(data_dir) as live:
        yield live


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (skipped where either is missing). Module scope:
    Playwright's sync API keeps an event loop running in the main thread while it is open, which
    makes every later ``asyncio.run`` in the session fail."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
