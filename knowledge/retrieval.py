"""Hybrid retrieval: BM25 and dense candidates fused by :class:`HybridRetriever`, one pipeline for the
embedded store and for Elasticsearch. :class:`KnowledgeSearch` is the Python API over it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from haystack import Document, Pipeline
from haystack.document_stores.types import DocumentStore

from core.errors import BackendUnavailableError, InvalidInputError
from core.settings import Settings
from knowledge.components.hybrid_retriever import HybridRetriever
from knowledge.components.memory_bm25_retriever import MemoryBM25Retriever
from knowledge.components.memory_embedding_retriever import MemoryEmbeddingRetriever
from knowledge.components.query_embedder import QueryEmbedder
from knowledge.components.query_likelihood_reranker import QueryLikelihoodReranker
from knowledge.components.score_fusion import ScoreFusion
from knowledge.components.sentence_reranker import SentenceReranker
from knowledge.encoder import encoder_options
from knowledge.generation.smollm2 import cache_dir_for
from knowledge.persistent_store import PersistentDocumentStore

RetrievalMode = Literal["hybrid", "bm25", "dense"]


def _retrievers(settings: Settings, store: DocumentStore) -> tuple[Any, Any]:
    candidates = settings.retrieval.candidates
    if isinstance(store, PersistentDocumentStore):
        return (MemoryBM25Retriever(document_store=store, top_k=candidates),
                MemoryEmbeddingRetriever(document_store=store, top_k=candidates))
    from haystack_integrations.components.retrievers.elasticsearch import (
        ElasticsearchBM25Retriever,
        ElasticsearchEmbeddingRetriever,
    )

    return (ElasticsearchBM25Retriever(document_store=store, top_k=candidates),  # type: ignore[arg-type]
            ElasticsearchEmbeddingRetriever(document_store=store, top_k=candidates))  # type: ignore[arg-type]


def lm_rerank_for(settings: Settings, generator: str | None = None) -> bool:
    """Whether the query-likelihood stage runs: ``retrieval.lm_rerank``, where ``"auto"`` means only
    when ``generator`` (the name of the generator that writes the answers; None for retrieval alone)
    is the local one."""
    setting = settings.retrieval.lm_rerank
    return generator == "local" if setting == "auto" else setting


def build_retrieval_pipeline(settings: Settings, store: DocumentStore, mode: RetrievalMode = "hybrid", *,
                             lm_rerank: bool = False) -> Pipeline:
    """``query`` -> ``query_embedder`` -> ``hybrid`` (BM25 + dense + fusion) [-> ``reranker`` when
    ``retrieval.rerank``] [-> ``lm_reranker`` when ``lm_rerank``, see :func:`lm_rerank_for`]. With ``mode`` bm25 or
    dense only that retriever is built (``bm25``, or ``query_embedder`` -> ``dense``: a
    :class:`HybridRetriever` without BM25, so that dense and hybrid pay the same pipeline costs); the
    last component's ``documents`` is the ranking."""
    bm25, dense = _retrievers(settings, store)
    pipeline = Pipeline()
    if mode == "bm25":
        pipeline.add_component("bm25", bm25)
        return pipeline
    pipeline.add_component("query_embedder", QueryEmbedder(**encoder_options(settings)))
    if mode == "dense":
        pipeline.add_component("dense", HybridRetriever(bm25_retriever=None, embedding_retriever=dense, fusion=None,
                                                        candidates=settings.retrieval.candidates))
        pipeline.connect("query_embedder.embedding", "dense.query_embedding")
        return pipeline
    retrieval = settings.retrieval
    fusion = ScoreFusion(mode=retrieval.fusion, bm25_weight=retrieval.bm25_weight,
                         dense_weight=retrieval.dense_weight, rrf_k=retrieval.rrf_k, top_k=retrieval.top_k)
    pipeline.add_component("hybrid", HybridRetriever(bm25_retriever=bm25, embedding_retriever=dense, fusion=fusion,
                                                     candidates=retrieval.candidates))
    pipeline.connect("query_embedder.embedding", "hybrid.query_embedding")
    if retrieval.rerank:
        pipeline.add_component("reranker", SentenceReranker(weight=retrieval.rerank_weight, top_k=retrieval.top_k,
                                                            **encoder_options(settings)))
        pipeline.connect("hybrid.documents", "reranker.documents")
        pipeline.connect("query_embedder.embedding", "reranker.query_embedding")
    if lm_rerank:
        pipeline.add_component("lm_reranker", QueryLikelihoodReranker(
            model_dir=settings.generator.local.model_dir, cache_dir=str(cache_dir_for(settings.data_dir)),
            weight=retrieval.lm_rerank_weight, candidates=retrieval.lm_rerank_candidates,
            margin=retrieval.lm_rerank_margin))
        pipeline.connect("reranker.documents" if retrieval.rerank else "hybrid.documents", "lm_reranker.documents")
    return pipeline


def metadata_filters(*, tenant: str | None = None, product: str | None = None, version: str | None = None,
                     language: str | None = None) -> dict[str, Any] | None:
    """Haystack filters for the given metadata (``None`` means any)."""
    wanted = {"tenant": tenant, "product": product, "version": version, "language": language}
    conditions = [{"field": f"meta.{key}", "operator": "==", "value": value}
                  for key, value in wanted.items() if value is not None]
    if not conditions:
        return None
    return {"operator": "AND", "conditions": conditions}


@dataclass(frozen=True)
class SearchRequest:
    query: str
    top_k: int


class KnowledgeSearch:
    """Runs the retrieval pipeline.

    Usage::

        search = KnowledgeSearch(settings, store)
        search.warm_up()
        chunks = search.search("How do I factory reset the R7?", filters=metadata_filters(tenant="acme"))

    :param generator: the name of the generator the chunks are retrieved for, which decides
        ``retrieval.lm_rerank = "auto"`` (:func:`lm_rerank_for`); None for retrieval alone.
    """

    def __init__(self, settings: Settings, store: DocumentStore, mode: RetrievalMode = "hybrid", *,
                 generator: str | None = None) -> None:
        self.settings = settings
        self.mode = mode
        self.store = store
        self.lm_rerank = mode == "hybrid" and lm_rerank_for(settings, generator)
        self.pipeline = build_retrieval_pipeline(settings, store, mode, lm_rerank=self.lm_rerank)

    def warm_up(self) -> None:
        self.pipeline.warm_up()

    def validate(self, query: str, top_k: int | None) -> SearchRequest:
        text = " ".join(query.split())
        limit = self.settings.retrieval.max_query_chars
        if not text:
            raise InvalidInputError("the query is empty")
        if len(query) > limit:
            raise InvalidInputError(
                f"the query is {len(query)} characters, over the limit of {limit} (SUPPORTBOT_RETRIEVAL__MAX_QUERY_CHARS)")
        k = top_k if top_k is not None else self.settings.retrieval.top_k
        if not 1 <= k <= 100:
            raise InvalidInputError(f"top_k must be between 1 and 100, not {k}")
        return SearchRequest(query=text, top_k=k)

    def search(self, query: str, *, top_k: int | None = None, filters: dict[str, Any] | None = None
               ) -> list[Document]:
        """The ranked chunks, best first.

        :raises InvalidInputError: empty or oversized query, top_k out of range.
        """
        request = self.validate(query, top_k)
        data: dict[str, dict[str, Any]] = {}
        if self.mode != "bm25":
            data["query_embedder"] = {"text": request.query}
        retrieval = self.settings.retrieval
        reranking = self.mode == "hybrid" and retrieval.rerank
        if self.mode == "hybrid":
            # each rerank stage reads at least its own candidates, and only the last one cuts to top_k
            lm_candidates = retrieval.lm_rerank_candidates if self.lm_rerank else 0
            reranked = max(request.top_k, lm_candidates)
            candidates = max(reranked, retrieval.rerank_candidates) if reranking else reranked
            data["hybrid"] = {"query": request.query, "filters": filters, "top_k": candidates}
            if reranking:
                data["reranker"] = {"top_k": reranked}
            if self.lm_rerank:
                data["lm_reranker"] = {"query": request.query, "top_k": request.top_k}
        elif self.mode == "bm25":
            data["bm25"] = {"query": request.query, "filters": filters, "top_k": request.top_k}
        else:
            data["dense"] = {"query": request.query, "filters": filters, "top_k": request.top_k}
        try:
            result = self.pipeline.run(data)
        except Exception as exc:
            if _store_unreachable(exc):
                raise BackendUnavailableError(f"the document store is unreachable: {exc}") from exc
            raise
        last: str = self.mode
        if self.mode == "hybrid":
            last = "lm_reranker" if self.lm_rerank else "reranker" if reranking else "hybrid"
        return list(result[last]["documents"])


def _store_unreachable(exc: BaseException) -> bool:
    """Whether a retrieval failure (or what caused it: Haystack wraps component errors) is the store
    being out of reach, which the API answers with 503 rather than 500."""
    from elastic_transport import ConnectionError as EsConnectionError
    from elastic_transport import ConnectionTimeout

    kinds = (ConnectionError, TimeoutError, EsConnectionError, ConnectionTimeout)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
