from __future__ import annotations

from typing import Any

import numpy as np
from haystack import Document, component, default_from_dict, default_to_dict

from knowledge.persistent_store import PersistentDocumentStore


@component
class MemoryEmbeddingRetriever:
    """Cosine similarity over the embedded store's normalised embedding matrix.

    Usage::

        retriever = MemoryEmbeddingRetriever(document_store=store, top_k=50)
        documents = retriever.run(query_embedding=vector)["documents"]
    """

    def __init__(self, document_store: PersistentDocumentStore, top_k: int = 50) -> None:
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        self.document_store = document_store
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, query_embedding: np.ndarray | list[float], filters: dict[str, Any] | None = None, top_k: int | None = None
            ) -> dict[str, list[Document]]:
        """:returns: up to ``top_k`` documents with their cosine ``score``, best first."""
        index = self.document_store.search_index()
        hits = index.dense(query_embedding, top_k=top_k or self.top_k, filters=filters)
        return {"documents": index.documents_for(hits)}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, document_store=self.document_store.to_dict(), top_k=self.top_k)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryEmbeddingRetriever:
        params = data["init_parameters"]
        params["document_store"] = PersistentDocumentStore.from_dict(params["document_store"])
        return default_from_dict(cls, data)
