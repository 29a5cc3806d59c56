from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np
from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.serialization import component_to_dict
from haystack.utils.deserialization import deserialize_component_inplace

from knowledge.components.score_fusion import ScoreFusion


@lru_cache(maxsize=1)
def _lexical_pool() -> ThreadPoolExecutor:
    """One pool per process for the BM25 half of hybrid searches (idle threads cost nothing)."""
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="bm25")


# A forked child inherits the pool but not its threads: it must build its own.
os.register_at_fork(after_in_child=_lexical_pool.cache_clear)


@component
class HybridRetriever:
    """BM25 and dense retrieval fused in one step: both retrievers' candidates are fused here and
    only the fused top ``top_k`` leave the component. Without a BM25 retriever (and fusion) it is
    the dense retriever alone, in the same pipeline shape (the dense-only evaluation mode).

    Why one component rather than three connected ones: a Haystack pipeline deep-copies every list
    passed between components, and copying 2 x 50 candidate Documents (through ``isinstance`` checks
    against the Component protocol) cost more than both searches together on squad-dev (see README).
    The wrapped retrievers are the shipped ones of each store (in-memory or Elasticsearch), called
    with the same arguments a pipeline would pass them. The BM25 search runs on a worker thread
    while the dense search runs on the caller's: two Elasticsearch round trips overlap, and in memory
    both searches spend most of their time in native code that releases the GIL.

    Usage::

        retriever = HybridRetriever(bm25_retriever=MemoryBM25Retriever(document_store=store),
                                    embedding_retriever=MemoryEmbeddingRetriever(document_store=store),
                                    fusion=ScoreFusion(top_k=5), candidates=50)
        documents = retriever.run(query="reset the R7", query_embedding=vector)["documents"]
    """

    def __init__(self, bm25_retriever: Any | None, embedding_retriever: Any, fusion: ScoreFusion | None,
                 candidates: int = 50) -> None:
        if candidates < 1:
            raise ValueError("candidates must be at least 1")
        if (bm25_retriever is None) != (fusion is None):
            raise ValueError("a BM25 retriever and a fusion go together: give both, or neither for dense only")
        self.bm25_retriever = bm25_retriever
        self.embedding_retriever = embedding_retriever
        self.fusion = fusion
        self.candidates = candidates

    def warm_up(self) -> None:
        for retriever in (self.bm25_retriever, self.embedding_retriever):
            if retriever is not None and hasattr(retriever, "warm_up"):
                retriever.warm_up()

    @component.output_types(documents=list[Document])
    def run(self, query: str, query_embedding: np.ndarray | list[float], filters: dict[str, Any] | None = None,
            top_k: int | None = None) -> dict[str, list[Document]]:
        """:returns: the fused top ``top_k`` (default: the fusion's), best first; each document's
        meta keeps its ``bm25_score`` and ``dense_score``. Dense only: the ``top_k`` (default:
        ``candidates``) nearest, with their cosine as score."""
        vector = np.asarray(query_embedding, dtype=np.float64).tolist()  # the stores' retrievers take lists
        if self.bm25_retriever is None or self.fusion is None:
            return {"documents": self.embedding_retriever.run(query_embedding=vector, filters=filters,
                                                              top_k=top_k or self.candidates)["documents"]}
        lexical_search = _lexical_pool().submit(self.bm25_retriever.run, query=query, filters=filters,
                                             top_k=self.candidates)
        semantic = self.embedding_retriever.run(query_embedding=vector, filters=filters,
                                                top_k=self.candidates)["documents"]
        lexical = lexical_search.result()["documents"]
        return self.fusion.run(bm25_documents=lexical, dense_documents=semantic, top_k=top_k)

    def to_dict(self) -> dict[str, Any]:
        def serialised(instance: Any | None, name: str) -> dict[str, Any] | None:
            return None if instance is None else component_to_dict(instance, name)

        return default_to_dict(self, bm25_retriever=serialised(self.bm25_retriever, "bm25_retriever"),
                               embedding_retriever=serialised(self.embedding_retriever, "embedding_retriever"),
                               fusion=serialised(self.fusion, "fusion"), candidates=self.candidates)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HybridRetriever:
        params = data["init_parameters"]
        for key in ("bm25_retriever", "embedding_retriever", "fusion"):
            if params.get(key) is not None:
                deserialize_component_inplace(params, key=key)
        return default_from_dict(cls, data)
