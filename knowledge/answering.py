"""The answer pipeline: retrieve -> decide whether the sources can answer -> prompt -> generate ->
check citations -> (regenerate once | extract) -> :class:`core.schemas.Answer`.

Multi-turn rewriting happens before (``bot``); logging happens after (``core.db``). This module
only turns one standalone question into one checked answer.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from typing import Any, Literal

from haystack import Document

from core.abstention import is_abstention
from core.errors import InvalidInputError
from core.schemas import Answer, RetrievedChunk, Timings
from core.settings import Settings
from knowledge.answer_likelihood import AnswerEvidence, answer_likelihood
from knowledge.citations.check import CitationCheck, check_citations
from knowledge.citations.stream_gate import SentenceGate
from knowledge.generation.base import ChatGenerator, GenerationError, GenerationRequest
from knowledge.generation.extractive import ExtractiveGenerator, SourceContext, heading_path_of, rank_sentences
from knowledge.generation.factory import extractive_generator
from knowledge.prompting.answer_prompt import ABSTAIN_PHRASE, AnswerPrompt
from knowledge.retrieval import KnowledgeSearch

ABSTAIN_TEXT = ("I don't know: the manuals I can search do not cover this question. "
                "Let me hand you over to a person who can help.")
LOW_SUPPORT = "low_retrieval_support"
MODEL_ABSTAINED = "model_abstained"
NO_SUPPORTED_ANSWER = "no_supported_answer"
UNCOVERED_FOCUS = "question_not_covered"
UNLIKELY_ANSWER = "answer_unlikely"


@dataclass
class AnswerEvent:
    """A streamed piece: ``token`` events carry generated text one finished sentence at a time,
    sanitised and without the sentences that hold the canary or repeat the system prompt
    (:class:`~knowledge.citations.stream_gate.SentenceGate`); the last event carries the checked
    :class:`Answer`, the authority (its text may differ from the tokens: unsupported sentences are
    removed and citations renumbered)."""

    kind: Literal["token", "answer"]
    text: str = ""
    answer: Answer | None = None


def retrieval_support(chunks: list[Document]) -> float | None:
    """The best chunk's cosine similarity to the question; ``None`` when no dense score exists."""
    scores = [float(chunk.meta["dense_score"]) for chunk in chunks if chunk.meta.get("dense_score") is not None]
    return max(scores) if scores else None


def question_coverage(question: str, chunks: list[Document]) -> float:
    """The largest share of the question's (idf-weighted) terms any single source sentence holds."""
    ranked = rank_sentences(question, [chunk.content or "" for chunk in chunks], rank_prior=0.0)
    return ranked[0].score if ranked else 0.0


def source_context(chunks: list[Document]) -> SourceContext:
    """The chunks' heading paths and retrieval cosines (0 where the retrieval gave none)."""
    return SourceContext(headings=[heading_path_of(chunk.meta) for chunk in chunks],
                         relevance=[float(chunk.meta.get("dense_score") or 0.0) for chunk in chunks])


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


class AnswerPipeline:
    """Answers one standalone question from the knowledge base.

    Usage::

        pipeline = AnswerPipeline(settings, search, generator)
        pipeline.warm_up()
        answer = pipeline.answer("How do I factory reset the R7?", filters=metadata_filters(tenant="acme"))
        for event in pipeline.stream("How do I factory reset the R7?"):
            ...
    """

    def __init__(self, settings: Settings, search: KnowledgeSearch, generator: ChatGenerator,
                 extractive: ExtractiveGenerator | None = None) -> None:
        self.settings = settings
        self.search = search
        self.generator = generator
        self.extractive = extractive or extractive_generator(settings)
        self.prompt = AnswerPrompt(settings.answer.prompt_version, few_shot=settings.answer.few_shot,
                                   canary=settings.answer.canary)
        self.likelihood = answer_likelihood(settings)

    def warm_up(self) -> None:
        self.search.warm_up()
        self.generator.warm_up()
        self.extractive.warm_up()

    def validate(self, question: str) -> str:
        text = " ".join(question.split())
        limit = self.settings.answer.max_question_chars
        if not text:
            raise InvalidInputError("the question is empty")
        if len(question) > limit:
            raise InvalidInputError(f"the question is {len(question)} characters, over the limit of {limit} "
                                    "(SUPPORTBOT_ANSWER__MAX_QUESTION_CHARS)")
        return text

    def answer(self, question: str, *, standalone_query: str | None = None, filters: dict[str, Any] | None = None,
               use_retrieval: bool = True) -> Answer:
        """The checked answer (see :meth:`stream`)."""
        final: Answer | None = None
        for event in self.stream(question, standalone_query=standalone_query, filters=filters,
                                 use_retrieval=use_retrieval):
            if event.kind == "answer":
                final = event.answer
        assert final is not None  # stream always ends with an answer event
        return final

    def stream(self, question: str, *, standalone_query: str | None = None, filters: dict[str, Any] | None = None,
               use_retrieval: bool = True) -> Iterator[AnswerEvent]:
        """Generated text as each sentence is finished and passes the stream checks, then the checked answer.

        ``use_retrieval=False`` asks the model without sources (the prompt-only baseline of the
        evaluation): its answer is returned unchecked and ungrounded.

        :raises InvalidInputError: empty or oversized question.
        """
        started = time.perf_counter()
        question = self.validate(question)
        query = self.validate(standalone_query) if standalone_query else question
        timings = Timings()
        chunks: list[Document] = []
        if use_retrieval:
            stage = time.perf_counter()
            chunks = self.search.search(query, top_k=self.settings.answer.sources, filters=filters)
            timings.retrieval_ms = _ms(stage)
        base: dict[str, Any] = {"question": question, "standalone_query": query, "timings": timings,
                "retrieved": [RetrievedChunk(chunk_id=c.id, score=float(c.score or 0.0), title=str(c.meta.get("title", "")))
                              for c in chunks]}
        reason = self.insufficient_support(query, chunks) if use_retrieval else None
        if reason:
            yield self._final(self._abstain(reason, base), started)
            return
        stage = time.perf_counter()
        budget = self.generator.context_window - self.settings.generator.max_new_tokens
        built = self.prompt.build(query, chunks, count_tokens=self.generator.count_tokens, max_prompt_tokens=budget)
        timings.prompt_ms = _ms(stage)
        context = source_context(built.documents)
        request = GenerationRequest(messages=built.messages, max_new_tokens=self.settings.generator.max_new_tokens,
                                    temperature=self.settings.generator.temperature, question=query,
                                    sources=built.texts, source_headings=[list(h) for h in context.headings],
                                    source_relevance=list(context.relevance))
        stage = time.perf_counter()
        pieces: list[str] = []
        fallback_reason = None
        gate = self._gate(built.documents, request, check_support=use_retrieval)
        try:
            with closing(self._reply(request, gate, pieces)) as released:
                for text in released:
                    if timings.generator_first_token_ms is None:
                        timings.generator_first_token_ms = _ms(started)
                    yield from self._streamed(text, timings, started)
        except GenerationError as error:
            fallback_reason = f"{self.generator.name} failed: {error.message}"
        else:  # an unfinished sentence of a failed reply is never shown: the reply is discarded
            if not self._astray(gate):
                yield from self._streamed(gate.flush(), timings, started)
        timings.generation_ms = _ms(stage)
        text = self._reply_text(gate, pieces)
        # counted on the whole reply, not per streamed sentence: the gate may hold back or drop text
        base["generated_tokens"] = self._tokens(pieces)
        if not use_retrieval:
            yield self._final(Answer(text=text, grounded=False, generator=self.generator.name,
                                     adapter_version=self.generator.adapter_version, **base), started)
            return
        if fallback_reason is None and is_abstention(text):
            yield self._final(self._abstain(MODEL_ABSTAINED, base), started)
            return
        answer = self._checked(text, built.documents, request, fallback_reason, base) if text or fallback_reason \
            else self._checked("", built.documents, request, f"{self.generator.name} returned nothing", base)
        yield self._final(answer, started)

    @staticmethod
    def _streamed(text: str, timings: Timings, started: float) -> Iterator[AnswerEvent]:
        if text:
            if timings.first_token_ms is None:
                timings.first_token_ms = _ms(started)
            yield AnswerEvent("token", text=text)

    def insufficient_support(self, query: str, chunks: list[Document]) -> str | None:
        """Why the sources cannot answer (a ``handoff_reason``), or ``None``: checked before any
        generation, cheapest first. The last ones read the sentence an extractive answer would quote
        and its section, whatever the generator: thresholds and the likelihood model in README,
        "Answers"."""
        settings = self.settings.answer
        if not chunks:
            return LOW_SUPPORT
        support = retrieval_support(chunks)
        if support is not None and support < settings.min_retrieval_support:
            return LOW_SUPPORT
        coverage = question_coverage(query, chunks)
        if coverage < settings.min_question_coverage:
            return LOW_SUPPORT
        if not settings.min_answer_confidence and settings.max_unmatched_focus >= 1 and self.likelihood is None:
            return None
        # the unmatched focus costs an encoder pass: measured only when a check reads it
        evidence = self.evidence(query, chunks, coverage=coverage,
                                 focus=self.likelihood is not None or settings.max_unmatched_focus < 1)
        if evidence.assessment.confidence < settings.min_answer_confidence:
            return LOW_SUPPORT
        if evidence.assessment.unmatched_focus > settings.max_unmatched_focus:
            return UNCOVERED_FOCUS
        if self.likelihood is not None and self.likelihood.probability(evidence) < settings.min_answer_probability:
            return UNLIKELY_ANSWER
        return None

    def evidence(self, query: str, chunks: list[Document], *, coverage: float | None = None,
                 focus: bool = True) -> AnswerEvidence:
        """What the abstention decision weighs about the sentence an extractive answer would quote
        from ``chunks`` (retrieved for ``query``); ``coverage``: its :func:`question_coverage`, when
        already known; ``focus``: measure its section's unmatched focus (an encoder pass)."""
        assessment = self.extractive.assess(query, [chunk.content or "" for chunk in chunks], source_context(chunks),
                                            focus=focus)
        return AnswerEvidence(assessment, retrieval_support=retrieval_support(chunks) or 0.0,
                              question_coverage=question_coverage(query, chunks) if coverage is None else coverage)

    def _checked(self, text: str, documents: list[Document], request: GenerationRequest,
                 fallback_reason: str | None, base: dict[str, Any]) -> Answer:
        timings: Timings = base["timings"]
        threshold = self.settings.answer.sentence_support
        generator_name, adapter = self.generator.name, self.generator.adapter_version
        check: CitationCheck | None = None
        if fallback_reason is None:
            stage = time.perf_counter()
            check = check_citations(text, documents, threshold, withheld=self._system_prompt(request),
                                    canary=self.settings.answer.canary)
            timings.check_ms = _ms(stage)
            if not check.supported and self.settings.answer.regenerate_once and self.generator.name != "extractive":
                stage = time.perf_counter()
                retry, retry_tokens = self._regenerate(request, documents)
                timings.regeneration_ms = _ms(stage)
                base["generated_tokens"] = base.get("generated_tokens", 0) + retry_tokens
                if retry is not None:
                    stage = time.perf_counter()
                    check = check_citations(retry, documents, threshold, withheld=self._system_prompt(request),
                                            canary=self.settings.answer.canary)
                    timings.check_ms += _ms(stage)
            if not check.supported:
                fallback_reason = "no sentence of the generated answer is supported by the sources"
        if check is None or not check.supported:
            if self.settings.answer.fallback == "abstain":
                return self._abstain(NO_SUPPORTED_ANSWER, base, fallback_reason)
            generator_name, adapter = self.extractive.name, None
            check = check_citations("".join(self.extractive.stream(request)), documents, threshold)
            if not check.supported:
                return self._abstain(NO_SUPPORTED_ANSWER, base, fallback_reason)
        return Answer(text=check.text, citations=check.citations, grounded=check.supported == check.claims,
                      generator=generator_name, adapter_version=adapter, fallback_reason=fallback_reason, **base)

    @staticmethod
    def _system_prompt(request: GenerationRequest) -> str:
        return "\n".join(message.content for message in request.messages if message.role == "system")

    def _regenerate(self, request: GenerationRequest, documents: list[Document]) -> tuple[str | None, int]:
        """One more try with light sampling (greedy decoding would repeat itself), stopped as the
        first one is when it goes astray: the reply to check (``None`` for none) and the tokens
        generated."""
        retry = replace(request, temperature=max(request.temperature, 0.7))
        gate = self._gate(documents, retry)
        pieces: list[str] = []
        try:
            with closing(self._reply(retry, gate, pieces)) as released:
                for _ in released:
                    pass
        except GenerationError:
            return None, self._tokens(pieces)
        text = self._reply_text(gate, pieces)
        return (None if is_abstention(text) else text), self._tokens(pieces)

    def _reply(self, request: GenerationRequest, gate: SentenceGate, pieces: list[str]
               ) -> Generator[str, None, None]:
        """Reads the generator's reply into ``pieces`` and through ``gate``, yielding what the gate
        releases after each piece; stops when the reply goes astray. Closing it ends the generator's
        stream at once (a local model's generation thread stops at its next token)."""
        stream = self.generator.stream(request)
        try:
            for piece in stream:
                pieces.append(piece)
                yield gate.feed(piece)
                if self._astray(gate):
                    return
        finally:
            if isinstance(stream, Generator):
                stream.close()

    def _reply_text(self, gate: SentenceGate, pieces: list[str]) -> str:
        """The reply to check: a reply stopped astray is judged on its finished sentences (its
        unfinished one is cut off)."""
        return gate.finished_text if self._astray(gate) else "".join(pieces).strip()

    def _tokens(self, pieces: list[str]) -> int:
        raw = "".join(pieces).strip()
        return self.generator.count_tokens(raw) if raw else 0

    def _gate(self, documents: list[Document], request: GenerationRequest, *, check_support: bool = True
              ) -> SentenceGate:
        return SentenceGate(documents, self.settings.answer.sentence_support, withheld=self._system_prompt(request),
                            canary=self.settings.answer.canary, check_support=check_support)

    def _astray(self, gate: SentenceGate) -> bool:
        return self.settings.answer.stop_astray and gate.strayed

    def _abstain(self, reason: str, base: dict[str, Any], fallback_reason: str | None = None) -> Answer:
        return Answer(text=ABSTAIN_TEXT, grounded=False, abstained=True, handoff_reason=reason,
                      generator=self.generator.name, adapter_version=self.generator.adapter_version,
                      fallback_reason=fallback_reason, **base)

    @staticmethod
    def _final(answer: Answer, started: float) -> AnswerEvent:
        answer.timings.total_ms = _ms(started)
        return AnswerEvent("answer", answer=answer)


__all__ = ["ABSTAIN_PHRASE", "ABSTAIN_TEXT", "UNCOVERED_FOCUS", "AnswerEvent", "AnswerPipeline"]
