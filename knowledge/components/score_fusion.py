from __future__ import annotations

import dataclasses
from typing import Any, Literal

from haystack import Document, component, default_from_dict, default_to_dict

FusionMode = Literal["convex", "rrf"]


def _normalised(documents: list[Document]) -> dict[str, float]:
    """Scores divided by the list's best score (a theoretical minimum of 0 for BM25 and cosine), so
    one strong lexical match and one strong semantic match weigh alike."""
    best = max((doc.score or 0.0 for doc in documents), default=0.0)
    if best <= 0:
        return {doc.id: 0.0 for doc in documents}
    return {doc.id: max(doc.score or 0.0, 0.0) / best for doc in documents}


def _reciprocal_ranks(documents: list[Document], k: int) -> dict[str, float]:
    return {doc.id: 1.0 / (k + rank) for rank, doc in enumerate(documents, start=1)}


@component
class ScoreFusion:
    """Fuses the BM25 and dense candidate lists into one ranking.

    ``convex`` (default): ``bm25_weight * bm25/max(bm25) + dense_weight * cos/max(cos)``; measured
    better than reciprocal-rank fusion on our data sets (see README). ``rrf``: weighted
    ``1 / (rrf_k + rank)``. Each output document's meta records both input scores.

    Usage::

        fused = ScoreFusion(bm25_weight=0.6, dense_weight=0.4).run(
            bm25_documents=lexical, dense_documents=semantic, top_k=5)["documents"]
    """

    def __init__(self, mode: FusionMode = "convex", bm25_weight: float = 0.5, dense_weight: float = 0.5,
                 rrf_k: int = 60, top_k: int = 5) -> None:
        if mode not in ("convex", "rrf"):
            raise ValueError(f"mode must be 'convex' or 'rrf', not {mode!r}")
        if bm25_weight < 0 or dense_weight < 0 or bm25_weight + dense_weight == 0:
            raise ValueError("weights must be non-negative and not both zero")
        self.mode: FusionMode = mode
        self.bm25_weight = bm25_weight
        self.dense_weight = dense_weight
        self.rrf_k = rrf_k
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, bm25_documents: list[Document], dense_documents: list[Document], top_k: int | None = None
            ) -> dict[str, list[Document]]:
        """:returns: the fused top ``top_k``, best first, ``score`` being the fused score."""
        if self.mode == "convex":
            lexical, semantic = _normalised(bm25_documents), _normalised(dense_documents)
        else:
            lexical, semantic = (_reciprocal_ranks(bm25_documents, self.rrf_k),
                                 _reciprocal_ranks(dense_documents, self.rrf_k))
        by_id = {doc.id: doc for doc in dense_documents}
        by_id.update({doc.id: doc for doc in bm25_documents})
        raw_bm25 = {doc.id: doc.score for doc in bm25_documents}
        raw_dense = {doc.id: doc.score for doc in dense_documents}
        fused = {doc_id: self.bm25_weight * lexical.get(doc_id, 0.0) + self.dense_weight * semantic.get(doc_id, 0.0)
                 for doc_id in by_id}
        ranked = sorted(fused, key=lambda doc_id: (-fused[doc_id], doc_id))[: top_k or self.top_k]
        return {"documents": [
            dataclasses.replace(by_id[doc_id], score=fused[doc_id],
                                meta={**by_id[doc_id].meta, "bm25_score": raw_bm25.get(doc_id),
                                      "dense_score": raw_dense.get(doc_id)})
            for doc_id in ranked]}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, mode=self.mode, bm25_weight=self.bm25_weight,
                               dense_weight=self.dense_weight, rrf_k=self.rrf_k, top_k=self.top_k)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreFusion:
        return default_from_dict(cls, data)
