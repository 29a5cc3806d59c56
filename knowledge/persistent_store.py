"""The embedded document store: Haystack's InMemoryDocumentStore, saved atomically to one file."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, default_from_dict, default_to_dict
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy

from core.errors import BackendUnavailableError
from knowledge.memory_index import BM25Parameters, MemoryIndex

FORMAT_VERSION = 1


class PersistentDocumentStore(InMemoryDocumentStore):
    """An in-memory store that loads from and saves to ``path``.

    ``save()`` writes a temporary file in the same directory, fsyncs it and renames it over the old
    one, so a crash mid-save leaves the previous index intact. Embeddings are stored as one float32
    block, which makes a reload about as fast as reading the file.
    """

    def __init__(self, path: str | None = None, bm25_k1: float = 1.2, bm25_b: float = 0.75) -> None:
        super().__init__(shared=False, embedding_similarity_function="cosine")
        self.path = path
        self.lexical_parameters = BM25Parameters(k1=bm25_k1, b=bm25_b)
        self._generation = 0
        self._index: tuple[int, MemoryIndex] | None = None
        self._index_lock = threading.Lock()
        if path and Path(path).exists():
            self._load(Path(path))

    # --- change tracking: every write or delete invalidates the search index ---------------------
    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        written = super().write_documents(documents, policy)
        self._generation += 1
        return written

    def delete_documents(self, document_ids: list[str]) -> None:
        super().delete_documents(document_ids)
        self._generation += 1

    def delete_all_documents(self) -> None:
        super().delete_all_documents()
        self._generation += 1

    def search_index(self) -> MemoryIndex:
        """The BM25 + dense index of the current contents, rebuilt only after a change."""
        with self._index_lock:
            if self._index is None or self._index[0] != self._generation:
                generation = self._generation
                documents = sorted(self.storage.values(), key=lambda d: d.id)
                self._index = (generation, MemoryIndex(documents, self.lexical_parameters))
            return self._index[1]

    # --- persistence --------------------------------------------------------------------------------
    def save(self) -> None:
        if not self.path:
            return
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        documents = list(self.storage.values())
        with_vectors = [doc for doc in documents if doc.embedding is not None]
        dims = len(with_vectors[0].embedding) if with_vectors else 0  # type: ignore[arg-type]
        matrix = np.asarray([doc.embedding for doc in with_vectors], dtype=np.float32).reshape(-1, dims or 1)
        payload = {
            "format": FORMAT_VERSION,
            "documents": [
                {**doc.to_dict(flatten=False), "embedding": None, "has_embedding": doc.embedding is not None}
                for doc in documents
            ],
            "dims": dims,
            "embeddings": base64.b64encode(matrix.tobytes()).decode("ascii") if dims else "",
        }
        handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(payload, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp_name, target)
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)

    def _load(self, path: Path) -> None:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("format") != FORMAT_VERSION:
                raise ValueError(f"unknown format {payload.get('format')!r}")
            dims = int(payload["dims"])
            vectors = (np.frombuffer(base64.b64decode(payload["embeddings"]), dtype=np.float32).reshape(-1, dims)
                       if dims else np.zeros((0, 0), dtype=np.float32))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackendUnavailableError(
                f"cannot read the index file {path}: {exc}. Move it away and re-run `supportbot ingest`."
            ) from exc
        documents = []
        next_vector = 0
        for raw in payload["documents"]:
            has_embedding = raw.pop("has_embedding", False)
            if has_embedding:
                raw["embedding"] = vectors[next_vector].tolist()
                next_vector += 1
            documents.append(Document.from_dict(raw))
        super().write_documents(documents, policy=DuplicatePolicy.OVERWRITE)
        self._generation += 1

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, path=self.path, bm25_k1=self.lexical_parameters.k1,
                               bm25_b=self.lexical_parameters.b)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersistentDocumentStore:
        return default_from_dict(cls, data)
