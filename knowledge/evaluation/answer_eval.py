"""``supportbot eval answers``: each generator answers the same questions from a fresh index of the
data set's corpus; answer quality, citation precision, abstention both ways and latency side by side.

Answerable questions (``gold_ids`` not empty) measure quality and wrongful abstention; unanswerable
ones (``gold_ids`` empty, plus those whose documents were held out with ``holdout``) measure how
often the bot says it does not know.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from core.schemas import Answer
from core.settings import Settings
from knowledge.answering import AnswerPipeline
from knowledge.evaluation.answer_metrics import best_of, citation_precision, corpus_bleu
from knowledge.evaluation.dataset import EvalDataset, Question
from knowledge.evaluation.retrieval_eval import index_dataset
from knowledge.evaluation.retrieval_metrics import percentile
from knowledge.generation.base import ChatGenerator
from knowledge.persistent_store import PersistentDocumentStore
from knowledge.retrieval import KnowledgeSearch

RUN_NAMES = ("extractive", "local-rag", "local-prompt-only", "remote-rag")


@dataclass
class EvalQuestions:
    answerable: list[Question]
    unanswerable: list[Question]
    dataset: EvalDataset


def _document_key(title: str) -> str:
    return title.split(" > ")[0].strip()


def select_questions(dataset: EvalDataset, *, limit: int | None, holdout: float = 0.0, seed: int = 13) -> EvalQuestions:
    """A seeded sample of ``limit`` answerable questions and up to ``limit`` unanswerable ones.

    ``holdout`` removes that fraction of the corpus's documents (entries sharing a title's first
    part) from the index; questions whose gold entries are all removed become unanswerable.
    """
    rng = random.Random(seed)
    corpus = dataset.corpus
    removed: set[str] = set()
    if holdout > 0:
        keys = sorted({_document_key(entry.title) for entry in corpus})
        held = set(rng.sample(keys, max(1, round(len(keys) * holdout))))
        removed = {entry.id for entry in corpus if _document_key(entry.title) in held}
        corpus = [entry for entry in corpus if entry.id not in removed]
    answerable = [q for q in dataset.questions if q.gold_ids and not set(q.gold_ids) <= removed]
    unanswerable = [q for q in dataset.questions if not q.gold_ids or set(q.gold_ids) <= removed]
    if limit is not None:
        answerable = rng.sample(answerable, min(limit, len(answerable)))
        unanswerable = rng.sample(unanswerable, min(limit, len(unanswerable)))
    return EvalQuestions(answerable, unanswerable, EvalDataset(name=dataset.name, corpus=corpus, questions=dataset.questions))


@dataclass
class RunScores:
    rouge: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    references: list[list[str]] = field(default_factory=list)
    cited_gold: int = 0
    cited: int = 0
    grounded: int = 0
    answered: int = 0
    abstained_answerable: int = 0
    abstained_unanswerable: int = 0
    n_unanswerable: int = 0
    fallbacks: int = 0
    latencies: list[float] = field(default_factory=list)
    first_tokens: list[float] = field(default_factory=list)

    def add_answerable(self, question: Question, answer: Answer, doc_ids: dict[str, str]) -> None:
        references = question.answers or [""]
        self.rouge.append(best_of("rouge_l", answer.text, references))
        self.f1.append(best_of("token_f1", answer.text, references))
        self.predictions.append(answer.text)
        self.references.append(references)
        if answer.abstained:
            self.abstained_answerable += 1
        else:
            self.answered += 1
            self.grounded += int(answer.grounded)
        good, total = citation_precision([doc_ids.get(c.chunk_id, "") for c in answer.citations], set(question.gold_ids))
        self.cited_gold += good
        self.cited += total
        self.fallbacks += int(answer.fallback_reason is not None)
        self._timing(answer)

    def add_unanswerable(self, answer: Answer) -> None:
        self.n_unanswerable += 1
        self.abstained_unanswerable += int(answer.abstained)
        self._timing(answer)

    def _timing(self, answer: Answer) -> None:
        self.latencies.append(answer.timings.total_ms)
        if answer.timings.first_token_ms is not None:
            self.first_tokens.append(answer.timings.first_token_ms)

    def as_dict(self) -> dict[str, Any]:
        n = max(len(self.rouge), 1)
        return {"rouge_l": sum(self.rouge) / n, "bleu": corpus_bleu(self.predictions, self.references),
                "token_f1": sum(self.f1) / n,
                "citation_precision": self.cited_gold / self.cited if self.cited else 0.0,
                "grounded_rate": self.grounded / self.answered if self.answered else 0.0,
                "abstention_rate": self.abstained_answerable / n,
                "unanswerable_abstention_rate": (self.abstained_unanswerable / self.n_unanswerable
                                                 if self.n_unanswerable else None),
                "n_answerable": len(self.rouge), "n_unanswerable": self.n_unanswerable,
                "fallback_rate": self.fallbacks / n,
                "p50_ms": percentile(self.latencies, 50), "p95_ms": percentile(self.latencies, 95),
                "first_token_p50_ms": percentile(self.first_tokens, 50) if self.first_tokens else None}


def run_generator(settings: Settings, store: PersistentDocumentStore, generator: ChatGenerator, questions: EvalQuestions,
                  *, use_retrieval: bool = True, name: str = "", progress_bar: bool = True) -> dict[str, Any]:
    search = KnowledgeSearch(settings, store, generator=generator.name if use_retrieval else None)
    pipeline = AnswerPipeline(settings, search, generator)
    pipeline.warm_up()
    doc_ids = {doc.id: str(doc.meta.get("doc_id")) for doc in store.filter_documents()}
    scores = RunScores()
    for question in tqdm(questions.answerable, desc=f"{name} answerable", unit="q", disable=not progress_bar, file=sys.stderr):
        scores.add_answerable(question, pipeline.answer(question.question, use_retrieval=use_retrieval), doc_ids)
    if use_retrieval:
        for question in tqdm(questions.unanswerable, desc=f"{name} unanswerable", unit="q", disable=not progress_bar,
                             file=sys.stderr):
            scores.add_unanswerable(pipeline.answer(question.question))
    return scores.as_dict()


def evaluate_answers(settings: Settings, dataset: EvalDataset, runs: dict[str, Callable[[], ChatGenerator]], *,
                     limit: int | None = None, holdout: float = 0.0, progress_bar: bool = True) -> dict[str, Any]:
    """``runs`` maps a run name (see :data:`RUN_NAMES`) to a generator factory; a ``-prompt-only``
    run answers without retrieval."""
    questions = select_questions(dataset, limit=limit, holdout=holdout)
    store = index_dataset(settings, questions.dataset, progress_bar=progress_bar, answer_vectors=True)
    results = {name: run_generator(settings, store, factory(), questions, use_retrieval=not name.endswith("prompt-only"),
                                   name=name, progress_bar=progress_bar)
               for name, factory in runs.items()}
    return {"dataset": dataset.name, "n_questions": len(questions.answerable) + len(questions.unanswerable),
            "n_answerable": len(questions.answerable), "n_unanswerable": len(questions.unanswerable),
            "holdout": holdout, "results": results}
