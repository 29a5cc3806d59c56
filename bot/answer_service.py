"""The answer service every channel calls: history -> standalone query -> knowledge answer pipeline."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from bot.query_rewriter import QueryRewriter
from core.schemas import Answer, ChatTurn
from core.settings import Settings
from knowledge.answering import AnswerEvent, AnswerPipeline
from knowledge.generation.base import ChatGenerator
from knowledge.retrieval import KnowledgeSearch

if TYPE_CHECKING:
    from knowledge.generation.factory import GeneratorName


class AnswerService:
    """Usage::

        service = build_answer_service(settings)  # or AnswerService(settings, search, generator)
        service.warm_up()
        answer = service.answer("and how do I reset it?", history, filters)
    """

    def __init__(self, settings: Settings, search: KnowledgeSearch, generator: ChatGenerator) -> None:
        self.settings = settings
        self.pipeline = AnswerPipeline(settings, search, generator)
        self.rewriter = QueryRewriter(history_turns=settings.answer.history_turns)

    def warm_up(self) -> None:
        self.pipeline.warm_up()

    def validate(self, question: str) -> str:
        """:raises InvalidInputError: empty or oversized question."""
        return self.pipeline.validate(question)

    def stream(self, question: str, history: Sequence[ChatTurn] = (), filters: dict[str, Any] | None = None
               ) -> Iterator[AnswerEvent]:
        """Tokens as generated, then the checked :class:`Answer`."""
        question = self.validate(question)
        standalone = self.rewriter.rewrite(question, history)
        return self.pipeline.stream(question, standalone_query=standalone, filters=filters)

    def answer(self, question: str, history: Sequence[ChatTurn] = (), filters: dict[str, Any] | None = None) -> Answer:
        final = None
        for event in self.stream(question, history, filters):
            if event.kind == "answer":
                final = event.answer
        assert final is not None
        return final


def build_answer_service(settings: Settings, *, generator: GeneratorName | None = None) -> AnswerService:
    """The answer service of the settings: the generator named (default ``generator.backend``) over
    the configured document store, with retrieval's query-likelihood stage on or off for that
    generator (``retrieval.lm_rerank``). Nothing is loaded until ``warm_up()``."""
    from knowledge.document_store import build_document_store
    from knowledge.generation.factory import build_generator

    writer = build_generator(settings, generator)
    search = KnowledgeSearch(settings, build_document_store(settings), generator=writer.name)
    return AnswerService(settings, search, writer)
