from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from knowledge.persistent_store import PersistentDocumentStore


@component
class MemoryBM25Retriever:
    """BM25 over the embedded store's sparse index (stemmed terms; titles and headings boosted).

    Usage::

        retriever = MemoryBM25Retriever(document_store=store, top_k=50)
        documents = retriever.run(query="factory reset")["documents"]
    """

    def __init__(self, document_store: PersistentDocumentStore, top_k: int = 50) -> None:
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        self.document_store = document_store
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
            ) -> dict[str, list[Document]]:
        """:returns: up to ``top_k`` documents with their BM25 ``score``, best first."""
        index = self.document_store.search_index()
        hits = index.bm25(query, top_k=top_k or self.top_k, filters=filters)
        return {"documents": index.documents_for(hits)}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, document_store=self.document_store.to_dict(), top_k=self.top_k)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryBM25Retriever:
        params = data["init_parameters"]
        params["document_store"] = PersistentDocumentStore.from_dict(params["document_store"])
        return default_from_dict(cls, data)
