"""``create_app()``: the HTTP API. Nothing happens at import time; the lifespan migrates the
database, opens the document store and loads the answer service once per process.

Usage::

    app = create_app(Settings())                      # what `supportbot serve` runs
    app = create_app(settings, answer_service=service)  # tests: a service over their own store
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine

from api.answer_runner import AnswerGate
from api.channel_mounts import mount_channels
from api.errors import install_error_handlers
from api.limits import BodySizeLimit, RateLimiter
from api.metrics import Metrics, MetricsMiddleware
from api.recent_keys import RecentKeys
from api.routes import admin, assist, chat, conversations, feedback, health, knowledge, widget
from api.state import AppState
from bot.answer_service import AnswerService, build_answer_service
from core.db.engine import build_engine, open_session
from core.db.migrate import upgrade
from core.db.queries import turns
from core.db.types import utc_now
from core.settings import Settings, get_settings

API_VERSION = "1.0.0"


def build_state(settings: Settings, metrics: Metrics, *, answer_service: AnswerService | None = None,
                engine: Engine | None = None) -> AppState:
    """Everything the requests share: migrated database, store, warmed-up answer service, limits."""
    engine = engine or build_engine(settings)
    upgrade(engine)
    fail_crashed_turns(engine, request_timeout_s=settings.api.request_timeout_s)
    if answer_service is None:
        answer_service = build_answer_service(settings)
    answer_service.warm_up()
    api = settings.api
    gate = AnswerGate(concurrency=api.generator_concurrency, queue_size=api.generator_queue,
                      retry_after_s=api.retry_after_s, on_change=metrics.in_flight.set)
    return AppState(settings=settings, engine=engine, store=answer_service.pipeline.search.store,
                    service=answer_service, gate=gate,
                    limiter=RateLimiter(per_minute=api.rate_limit_per_minute, burst=api.rate_limit_burst),
                    metrics=metrics, keys=RecentKeys(ttl_s=api.key_cache_s))


CRASHED_TURN_REASON = "interrupted: the server stopped before the answer was stored; please ask again"


def fail_crashed_turns(engine: Engine, *, request_timeout_s: float) -> int:
    """Turns left ``pending`` by a process that died mid-answer: any older than the request
    timeout can no longer be finished by a live request, so they are marked failed with a reason
    the conversation shows. Younger ones may belong to another API process still answering."""
    older_than = utc_now() - timedelta(seconds=request_timeout_s)
    with open_session(engine) as session:
        return turns.fail_stale_pending_turns(session, older_than=older_than, reason=CRASHED_TURN_REASON)


def create_app(settings: Settings | None = None, *, answer_service: AnswerService | None = None,
               engine: Engine | None = None) -> FastAPI:
    """The API app. ``answer_service`` and ``engine`` replace what the settings would build (the
    service's store is the one documents are uploaded to and listed from)."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await to_thread.run_sync(
            lambda: build_state(settings, metrics, answer_service=answer_service, engine=engine))
        app.state.supportbot = state
        try:
            yield
        finally:
            state.gate.shutdown()
            if engine is None:
                state.engine.dispose()

    app = FastAPI(title="supportbot", version=API_VERSION, lifespan=lifespan,
                  description="Grounded support answers with citations, conversations, feedback and knowledge admin.")
    install_error_handlers(app)
    for router in (chat.router, conversations.router, feedback.router, assist.router, knowledge.router, admin.router,
                   health.router, widget.router):
        app.include_router(router)
    mount_channels(app, settings)
    api = settings.api

    def body_limit(path: str) -> int:
        return api.max_upload_bytes if path.startswith("/v1/documents") else api.max_body_bytes

    app.add_middleware(BodySizeLimit, limit_for=body_limit)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Outermost, so refusals (401, 413, 429) reach the embedding page readable too. Keys are sent in
    # headers, never cookies: no credentials mode, and `*` lends a page nothing it does not hold.
    app.add_middleware(CORSMiddleware, allow_origins=api.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                       allow_headers=["Authorization", "X-API-Key", "Content-Type", "Accept"],
                       expose_headers=["Retry-After"], max_age=600)
    return app
