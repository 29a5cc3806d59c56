"""The extractive generator: no language model. It quotes the sentences of the retrieved sources
that best answer the question, each with its citation. Fast, always grounded, and the fallback when
the configured generator fails, times out or strays from its sources."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.answerability import section_words, unmatched_focus
from knowledge.citations.instructions import addresses_the_assistant
from knowledge.citations.markers import with_markers
from knowledge.generation.base import GenerationRequest
from knowledge.prompting.answer_prompt import ABSTAIN_PHRASE
from knowledge.sentences import split_sentences
from knowledge.text_analysis import term_set
from knowledge.text_vectors import shared_text_vectors

if TYPE_CHECKING:
    from knowledge.encoder import SentenceEncoder

SEMANTIC_CANDIDATES = 12
"""Sentences (best by term overlap) that are also compared with the question by meaning. With the
section term, 12 gained 1.3 and 0.5 points of citation precision over 6 on the calibration halves of
manuals-eval and squad-dev; comparing every sentence gained nothing more."""

HEADING_TERM_WEIGHT = 0.5
"""What a question term found only in a sentence's heading path counts, against 1 for one in the
sentence itself: the heading places the sentence in the right section, the sentence's own words
pick the step of that section that answers (the reset step, not "keep the router powered on")."""


@dataclass(frozen=True)
class SourceContext:
    """What the retrieval knows about the sources besides their text: ``headings[n-1]`` is source
    ``n``'s heading path (document title first), ``relevance[n-1]`` its cosine to the question.
    Either may be empty (unknown)."""

    headings: Sequence[Sequence[str]] = ()
    relevance: Sequence[float] = ()

    @classmethod
    def of(cls, request: GenerationRequest) -> SourceContext:
        return cls(request.source_headings, request.source_relevance)

    def heading(self, number: int) -> Sequence[str]:
        return self.headings[number - 1] if number <= len(self.headings) else ()

    def section_relevance(self, number: int) -> float:
        return float(self.relevance[number - 1]) if number <= len(self.relevance) else 0.0


@dataclass(frozen=True)
class Assessment:
    """How well the best-supported sentence answers the question: ``confidence`` is its score (0 when
    none qualifies), ``unmatched_focus`` the :func:`~knowledge.answerability.unmatched_focus` of its
    section (0 when not measured). The parts of the score and how far the best sentence leads those
    of other sources are what :class:`~knowledge.answer_likelihood.AnswerLikelihood` weighs."""

    confidence: float
    unmatched_focus: float
    words: float = 0.0
    """the idf-weighted share of the question's terms the sentence and its heading path hold"""
    meaning: float = 0.0
    """cosine between the question and "section heading: sentence" (0 without an encoder)"""
    section_relevance: float = 0.0
    """its source's retrieval cosine"""
    lead: float = 0.0
    """its score minus the best score of a sentence from another source (its score when none)"""
    source_rank: int = 0
    """the retrieval rank of its source (1 = best; 0 when none qualifies)"""
    candidates: int = 0
    """sentences that qualified"""


@dataclass(frozen=True)
class ScoredSentence:
    source: int
    position: int
    text: str
    score: float
    words: float = 0.0
    """the term-overlap part of ``score`` (without the rank prior)"""
    meaning: float = 0.0
    """the question-sentence cosine (0 until :meth:`ExtractiveGenerator._with_meaning` adds it)"""


def rank_sentences(question: str, sources: list[str], *, rank_prior: float = 0.1,
                   headings: Sequence[Sequence[str]] = ()) -> list[ScoredSentence]:
    """Every source sentence scored by the idf-weighted share of the question's terms it contains,
    plus a small prior for better-ranked sources; best first.

    ``headings[n-1]`` is source ``n``'s heading path: its terms count for each of the source's
    sentences, because a step of the "Factory reset" section rarely repeats "factory reset" while a
    side remark elsewhere ("erase your settings with a factory reset before you send the router")
    does (README, "Reading a sentence in its section")."""
    question_terms = term_set(question)
    candidates = [(number, position, sentence, term_set(sentence))
                  for number, text in enumerate(sources, start=1)
                  for position, sentence in enumerate(split_sentences(text))
                  if not addresses_the_assistant(sentence)]  # planted, never manual content
    if not question_terms or not candidates:
        return []
    # idf over the sentences' own terms: a heading shared by a whole section is not evidence of rarity
    document_frequency = Counter(term for *_, terms in candidates for term in terms & question_terms)
    idf = {term: math.log(1 + len(candidates) / (1 + document_frequency[term])) for term in question_terms}
    total = sum(idf.values())
    context = [term_set(" ".join(path)) & question_terms for path in headings]
    scored = []
    for number, position, sentence, terms in candidates:
        # never quoted for its heading alone (nor is an instruction planted under a matching heading)
        if not terms & question_terms:
            continue
        own = terms & question_terms
        inherited = (context[number - 1] if number <= len(context) else set()) - own
        words = (sum(idf[t] for t in own) + HEADING_TERM_WEIGHT * sum(idf[t] for t in inherited)) / total
        scored.append(ScoredSentence(number, position, sentence, words + rank_prior / number, words=words))
    return sorted(scored, key=lambda s: (-s.score, s.source, s.position))


class ExtractiveGenerator:
    """Implements :class:`~knowledge.generation.base.ChatGenerator` from ``request.question``,
    ``request.sources`` and, when given, their heading paths and retrieval cosines (the messages are
    ignored).

    A sentence's score: the idf-weighted share of the question's terms it and its heading path hold,
    plus ``rank_prior / rank``; the best ``SEMANTIC_CANDIDATES`` of those also get
    ``semantic_weight x`` the cosine between the question and "section heading: sentence", and
    ``section_weight x`` their source's retrieval cosine. A sentence is read in its section: which
    section it comes from is most of what makes its citation right.

    Vectors come from :class:`~knowledge.text_vectors.TextVectors`: with ``vectors_path``, those that
    ingestion precomputed (:func:`comparison_texts`) are read instead of encoded.

    Usage::

        text = generate_text(ExtractiveGenerator(), GenerationRequest(messages=[], question=q, sources=texts))
    """

    name = "extractive"

    def __init__(self, max_sentences: int = 2, min_score: float = 0.2, companion_ratio: float = 0.75,
                 rank_prior: float = 0.3, semantic_weight: float = 0.0, section_weight: float = 0.0,
                 encoder: SentenceEncoder | None = None, vectors_path: Path | None = None) -> None:
        if semantic_weight and encoder is None:
            raise ValueError("semantic_weight needs a sentence encoder")
        self.max_sentences = max_sentences
        self.min_score = min_score
        self.companion_ratio = companion_ratio
        self.rank_prior = rank_prior
        self.semantic_weight = semantic_weight
        self.section_weight = section_weight
        self.encoder = encoder
        self.vectors = shared_text_vectors(encoder, vectors_path) if encoder is not None else None

    def warm_up(self) -> None:
        if self.encoder is not None:
            self.encoder.warm_up()

    def _with_meaning(self, question: str, ranked: list[ScoredSentence], context: SourceContext
                      ) -> list[ScoredSentence]:
        """Adds the meaning and section terms to the best sentences by words (see the class): term
        overlap alone favours a sentence that repeats the question's words over the one that answers
        it, and a sentence alone does not say what its section is about (measured on the calibration
        halves: citation precision 0.83 -> 0.93 on manuals-eval, 0.86 -> 0.87 on squad-dev)."""
        if not self.semantic_weight or self.vectors is None or not ranked:
            return ranked
        head = ranked[:SEMANTIC_CANDIDATES]
        question_vector, *sentence_vectors = self.vectors(
            [question, *(in_section(s.text, context.heading(s.source)) for s in head)])
        cosines = [float(vector @ question_vector) for vector in sentence_vectors]
        rescored = [replace(s, score=s.score + self.semantic_weight * cosine
                            + self.section_weight * context.section_relevance(s.source), meaning=cosine)
                    for s, cosine in zip(head, cosines, strict=True)]
        return sorted(rescored, key=lambda s: (-s.score, s.source, s.position))

    def _ranked(self, question: str, sources: list[str], context: SourceContext) -> list[ScoredSentence]:
        ranked = [s for s in rank_sentences(question, sources, rank_prior=self.rank_prior, headings=context.headings)
                  if s.score >= self.min_score]
        return self._with_meaning(question, ranked, context)

    def confidence(self, question: str, sources: list[str], context: SourceContext | None = None) -> float:
        """The score of the sentence an extractive answer would start with (0 when none qualifies):
        how well the best sentence matches the question in words and in meaning, and its section
        the question."""
        ranked = self._ranked(question, sources, context or SourceContext())
        return ranked[0].score if ranked else 0.0

    def assess(self, question: str, sources: list[str], context: SourceContext | None = None, *,
               focus: bool = True) -> Assessment:
        """The :meth:`confidence` and, with ``focus`` and an encoder, whether the best sentence's
        section covers what the question is about (:func:`~knowledge.answerability.unmatched_focus`)."""
        context = context or SourceContext()
        ranked = self._ranked(question, sources, context)
        if not ranked:
            return Assessment(confidence=0.0, unmatched_focus=0.0)
        best = ranked[0]
        gap = 0.0
        if focus and self.vectors is not None:
            gap = unmatched_focus(question, sources[best.source - 1], context.heading(best.source), self.vectors)
        runner_up = next((s.score for s in ranked if s.source != best.source), 0.0)
        return Assessment(confidence=best.score, unmatched_focus=gap, words=best.words, meaning=best.meaning,
                          section_relevance=context.section_relevance(best.source), lead=best.score - runner_up,
                          source_rank=best.source, candidates=len(ranked))

    def select(self, question: str, sources: list[str], context: SourceContext | None = None) -> list[ScoredSentence]:
        """The best sentence, plus up to ``max_sentences - 1`` others of the same source scoring close
        to it, in reading order. Companions stay in the best sentence's source: a second source
        cited for a side remark is the most common wrong citation."""
        context = context or SourceContext()
        ranked = self._ranked(question, sources, context)
        if not ranked:
            return []
        best = ranked[0]
        # compared without the section term, which all of the source's sentences share: it would let
        # any sentence of a relevant section pass as close to the best one (longer answers, lower ROUGE)
        shared = self.section_weight * context.section_relevance(best.source) if self.semantic_weight else 0.0
        companions = [s for s in ranked[1:] if s.source == best.source and s.text != best.text
                      and s.score - shared >= (best.score - shared) * self.companion_ratio]
        return sorted([best, *companions[: self.max_sentences - 1]], key=lambda s: s.position)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        chosen = self.select(request.question, request.sources, SourceContext.of(request))
        if not chosen:
            yield ABSTAIN_PHRASE
            return
        for index, sentence in enumerate(chosen):
            yield (" " if index else "") + with_markers(sentence.text, [sentence.source])

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    @property
    def context_window(self) -> int:
        return 1_000_000

    @property
    def adapter_version(self) -> str | None:
        return None


def heading_path_of(meta: Mapping[str, Any]) -> list[str]:
    """A chunk's heading path, document title first: a PDF's outline starts at its first chapter
    ("Care and maintenance"), and without the title the product a section belongs to is lost."""
    path = [str(part) for part in meta.get("heading_path") or []]
    title = str(meta.get("title") or "")
    return [title, *path] if title and (not path or path[0] != title) else path


def comparison_texts(source: str, heading_path: Sequence[str]) -> list[str]:
    """Every text of a source whose vector an answer may compare with a question: its sentences in
    their section and the words of the section (:func:`~knowledge.answerability.section_words`).
    Encoded at ingestion, so that no question waits for them."""
    sentences = [in_section(sentence, heading_path) for sentence in split_sentences(source)]
    return [*sentences, *section_words(source, heading_path).values()]


def in_section(sentence: str, heading_path: Sequence[str]) -> str:
    """The sentence prefixed with its section's heading ("Factory reset: Press and hold ..."), which
    is what it means to a reader; a document's own title (a one-part path) adds nothing."""
    return f"{heading_path[-1]}: {sentence}" if len(heading_path) > 1 else sentence
