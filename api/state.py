"""What the app builds once at start (in its lifespan) and every request shares."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from haystack.document_stores.types import DocumentStore
from sqlalchemy import Engine

from api.answer_runner import AnswerGate
from api.limits import RateLimiter
from api.metrics import Metrics
from api.recent_keys import RecentKeys
from bot.answer_service import AnswerService
from core.settings import Settings
from knowledge.generation.base import ChatGenerator
from knowledge.retrieval import KnowledgeSearch

if TYPE_CHECKING:
    from api.deps import Principal


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    store: DocumentStore
    service: AnswerService
    gate: AnswerGate
    limiter: RateLimiter
    metrics: Metrics
    keys: RecentKeys[Principal]
    """Keys found valid recently (``api.key_cache_s``), by hash: the :class:`~api.deps.Principal` each one is."""
    index_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while documents are written to or deleted from the store."""

    @property
    def search(self) -> KnowledgeSearch:
        return self.service.pipeline.search

    @property
    def generator(self) -> ChatGenerator:
        return self.service.pipeline.generator
