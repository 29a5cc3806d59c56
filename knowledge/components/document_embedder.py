from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from tqdm import tqdm

from knowledge.encoder import SentenceEncoder, shared_encoder


def embedding_text(document: Document) -> str:
    """What the dense model sees: the heading path gives a section its context."""
    headings = " > ".join(document.meta.get("heading_path") or [document.meta.get("title") or ""])
    return f"{headings}\n{document.content or ''}"


def _updater(bar: tqdm) -> Callable[[int], None]:
    def update(count: int) -> None:
        bar.update(count)

    return update


@component
class DocumentEmbedder:
    """Adds all-MiniLM-L6-v2 embeddings to documents, in length-sorted batches.

    Usage::

        embedder = DocumentEmbedder(**encoder_options(settings))
        embedder.warm_up()
        embedded = embedder.run(documents=chunks)["documents"]
    """

    def __init__(self, model_path: str = "", batch_size: int = 64, max_seq_length: int = 256,
                 progress_bar: bool = False, runtime: str = "torch", cache_dir: str = "", threads: int = 0) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.progress_bar = progress_bar
        self.runtime = runtime
        self.cache_dir = cache_dir
        self.threads = threads
        self._encoder: SentenceEncoder | None = None

    def warm_up(self) -> None:
        self._ready_encoder()

    def _ready_encoder(self) -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = shared_encoder(self.model_path, batch_size=self.batch_size,
                                           max_seq_length=self.max_seq_length, threads=self.threads,
                                           runtime=self.runtime, cache_dir=self.cache_dir, purpose="documents")
            self._encoder.warm_up()
        return self._encoder

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """:returns: new Documents with ``embedding`` set (inputs are not modified)."""
        encoder = self._ready_encoder()
        if not documents:
            return {"documents": []}
        with tqdm(total=len(documents), desc="embedding", unit="chunk", disable=not self.progress_bar,
                  leave=False) as bar:
            vectors = encoder.encode([embedding_text(doc) for doc in documents], progress=_updater(bar))
        return {"documents": [dataclasses.replace(doc, embedding=vector.tolist())
                              for doc, vector in zip(documents, vectors, strict=True)]}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, model_path=self.model_path, batch_size=self.batch_size,
                               max_seq_length=self.max_seq_length, progress_bar=self.progress_bar,
                               runtime=self.runtime, cache_dir=self.cache_dir, threads=self.threads)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentEmbedder:
        return default_from_dict(cls, data)
