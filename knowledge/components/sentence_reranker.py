from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from haystack import Document, component, default_from_dict, default_to_dict

from knowledge.encoder import SentenceEncoder, shared_encoder
from knowledge.sentences import split_sentences


@component
class SentenceReranker:
    """Reorders fused candidates by ``score/max(score) + weight * best/max(best)``, where ``best`` is
    the cosine similarity between the query and the chunk's closest *sentence*.

    A whole-chunk embedding blurs a section about several things; the sentence that actually
    answers stands out at sentence level. It runs offline with the same MiniLM model (no
    cross-encoder can be downloaded here); sentence vectors are cached by chunk id (ids are
    content hashes, so a cached vector never goes stale). Measured effect: see README.

    Usage::

        reranker = SentenceReranker(weight=0.5, top_k=5)
        reranker.warm_up()
        ranked = reranker.run(documents=fused, query_embedding=vector)["documents"]
    """

    def __init__(self, model_path: str = "", weight: float = 0.5, top_k: int = 5, max_seq_length: int = 256,
                 cache_size: int = 20_000, runtime: str = "torch", cache_dir: str = "", threads: int = 0) -> None:
        if weight < 0:
            raise ValueError("weight must be non-negative")
        self.model_path = model_path
        self.weight = weight
        self.top_k = top_k
        self.max_seq_length = max_seq_length
        self.cache_size = cache_size
        self.runtime = runtime
        self.cache_dir = cache_dir
        self.threads = threads
        self._encoder: SentenceEncoder | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._encoder is None:
            self._encoder = shared_encoder(self.model_path, max_seq_length=self.max_seq_length, threads=self.threads,
                                           runtime=self.runtime, cache_dir=self.cache_dir)
            self._encoder.warm_up()

    def _sentence_vectors(self, documents: list[Document]) -> list[np.ndarray]:
        assert self._encoder is not None
        with self._lock:
            missing = [doc for doc in documents if doc.id not in self._cache]
        if missing:
            pieces = [split_sentences(doc.content or "") or [doc.content or ""] for doc in missing]
            vectors = self._encoder.encode([sentence for group in pieces for sentence in group])
            start = 0
            with self._lock:
                for doc, group in zip(missing, pieces, strict=True):
                    self._cache[doc.id] = vectors[start : start + len(group)]
                    start += len(group)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        with self._lock:
            return [self._cache[doc.id] for doc in documents]

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document], query_embedding: np.ndarray | list[float], top_k: int | None = None
            ) -> dict[str, list[Document]]:
        """:returns: the best ``top_k`` documents; ``meta["sentence_score"]`` holds the best sentence cosine."""
        self.warm_up()
        if not documents:
            return {"documents": []}
        query = np.asarray(query_embedding, dtype=np.float32)
        best = np.array([float((vectors @ query).max()) if len(vectors) else 0.0
                         for vectors in self._sentence_vectors(documents)])
        fused = np.array([doc.score or 0.0 for doc in documents])
        combined = fused / max(float(fused.max()), 1e-9) + self.weight * best / max(float(best.max()), 1e-9)
        order = sorted(range(len(documents)), key=lambda i: (-combined[i], i))[: top_k or self.top_k]
        return {"documents": [dataclasses.replace(documents[i], score=float(combined[i]),
                                                  meta={**documents[i].meta, "sentence_score": float(best[i])})
                              for i in order]}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, model_path=self.model_path, weight=self.weight, top_k=self.top_k,
                               max_seq_length=self.max_seq_length, cache_size=self.cache_size,
                               runtime=self.runtime, cache_dir=self.cache_dir, threads=self.threads)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SentenceReranker:
        return default_from_dict(cls, data)
