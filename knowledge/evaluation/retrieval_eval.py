"""``supportbot eval retrieval``: index a data set's corpus into a fresh embedded store and score
bm25, dense and hybrid retrieval side by side."""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from typing import Any

from haystack import Document
from tqdm import tqdm

from core.settings import Settings
from knowledge.components.answer_vector_precomputer import AnswerVectorPrecomputer
from knowledge.components.document_embedder import DocumentEmbedder
from knowledge.components.section_splitter import SectionSplitter
from knowledge.encoder import encoder_options
from knowledge.evaluation.dataset import EvalDataset
from knowledge.evaluation.retrieval_metrics import mrr_at, ndcg_at, percentile, recall_at
from knowledge.generation.factory import answer_vectors_path, extractive_uses_encoder
from knowledge.persistent_store import PersistentDocumentStore
from knowledge.retrieval import KnowledgeSearch, RetrievalMode

MODES: tuple[RetrievalMode, ...] = ("bm25", "dense", "hybrid")
EVAL_TENANT = "eval"


def corpus_documents(dataset: EvalDataset) -> list[Document]:
    """One section Document per corpus entry; ``A > B`` titles become a heading path."""
    documents = []
    for entry in dataset.corpus:
        path = [part.strip() for part in entry.title.split(" > ") if part.strip()] or [entry.id]
        meta: dict[str, Any] = {"tenant": EVAL_TENANT, "source": entry.id, "doc_id": entry.id,
                                "title": path[0], "heading_path": path}
        if entry.url:
            meta["url"] = entry.url
        if entry.page is not None:
            meta["page"] = entry.page
        documents.append(Document(content=entry.text, meta=meta))
    return documents


def index_dataset(settings: Settings, dataset: EvalDataset, *, progress_bar: bool = True,
                  answer_vectors: bool = False) -> PersistentDocumentStore:
    """The dataset's corpus chunked and embedded into an in-memory store; with ``answer_vectors``, the
    answers' comparison vectors are precomputed too, as ingestion does (not part of answer latency)."""
    store = PersistentDocumentStore(path=None, bm25_k1=settings.retrieval.bm25_k1, bm25_b=settings.retrieval.bm25_b)
    chunks = SectionSplitter(max_words=settings.chunking.max_words,
                             overlap_sentences=settings.chunking.overlap_sentences).run(
        documents=corpus_documents(dataset))["documents"]
    embedder = DocumentEmbedder(batch_size=settings.embedding.batch_size, progress_bar=progress_bar,
                                **encoder_options(settings))
    embedded = embedder.run(documents=chunks)["documents"]
    if answer_vectors and extractive_uses_encoder(settings):
        AnswerVectorPrecomputer(vectors_path=str(answer_vectors_path(settings)), **encoder_options(settings)).run(
            documents=embedded)
    store.write_documents(embedded)
    return store


@dataclass
class ModeScores:
    recall1: float = 0.0
    recall5: float = 0.0
    recall10: float = 0.0
    mrr10: float = 0.0
    ndcg10: float = 0.0

    def as_dict(self, n: int, latencies: list[float]) -> dict[str, float]:
        return {"recall@1": self.recall1 / n, "recall@5": self.recall5 / n, "recall@10": self.recall10 / n,
                "mrr@10": self.mrr10 / n, "ndcg@10": self.ndcg10 / n,
                "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95)}


def ranked_doc_ids(chunks: list[Document], k: int) -> list[str]:
    """Corpus ids in rank order, each once (a split section counts at its best chunk)."""
    ids: list[str] = []
    for chunk in chunks:
        doc_id = str(chunk.meta.get("doc_id"))
        if doc_id not in ids:
            ids.append(doc_id)
        if len(ids) == k:
            break
    return ids


def evaluate_retrieval(settings: Settings, dataset: EvalDataset, *, limit: int | None = None,
                       modes: tuple[RetrievalMode, ...] = MODES, store: PersistentDocumentStore | None = None,
                       progress_bar: bool = True) -> dict[str, Any]:
    """Scores each mode on the answerable questions (``gold_ids`` not empty)."""
    questions = [q for q in dataset.questions if q.gold_ids]
    if limit is not None and limit < len(questions):
        questions = random.Random(13).sample(questions, limit)
    store = store or index_dataset(settings, dataset, progress_bar=progress_bar)
    result: dict[str, Any] = {"dataset": dataset.name, "n_questions": len(questions)}
    for mode in modes:
        search = KnowledgeSearch(settings, store, mode=mode)
        search.warm_up()
        search.search(questions[0].question if questions else "warm up", top_k=20)
        scores = ModeScores()
        latencies: list[float] = []
        for question in tqdm(questions, desc=f"eval {mode}", unit="q", disable=not progress_bar, file=sys.stderr):
            started = time.perf_counter()
            chunks = search.search(question.question[: settings.retrieval.max_query_chars], top_k=20)
            latencies.append((time.perf_counter() - started) * 1000)
            ranked = ranked_doc_ids(chunks, 10)
            gold = set(question.gold_ids)
            scores.recall1 += recall_at(ranked, gold, 1)
            scores.recall5 += recall_at(ranked, gold, 5)
            scores.recall10 += recall_at(ranked, gold, 10)
            scores.mrr10 += mrr_at(ranked, gold, 10)
            scores.ndcg10 += ndcg_at(ranked, gold, 10)
        result[mode] = scores.as_dict(max(len(questions), 1), latencies)
    return result
