from __future__ import annotations

from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from knowledge.encoder import shared_encoder
from knowledge.generation.extractive import comparison_texts, heading_path_of
from knowledge.prompting.answer_prompt import neutralise
from knowledge.text_vectors import TextVectors, shared_text_vectors


@component
class AnswerVectorPrecomputer:
    """Encodes, while a chunk is indexed, the texts the extractive answer compares with questions (the
    chunk's sentences in their section, the section's words) into the answer vector file, so the
    first question to reach the chunk does not wait 100-300 ms for them. Documents pass through
    unchanged.

    The encoder is the one answers use (``purpose="queries"``), so the stored vectors are exactly
    those an answer would compute.

    Usage::

        precomputer = AnswerVectorPrecomputer(vectors_path="data/answer_vectors.sqlite", **encoder_options(settings))
        precomputer.warm_up()
        documents = precomputer.run(documents=chunks)["documents"]
    """

    def __init__(self, vectors_path: str, model_path: str = "", max_seq_length: int = 256, runtime: str = "torch",
                 cache_dir: str = "", threads: int = 0) -> None:
        self.vectors_path = vectors_path
        self.model_path = model_path
        self.max_seq_length = max_seq_length
        self.runtime = runtime
        self.cache_dir = cache_dir
        self.threads = threads
        self._vectors: TextVectors | None = None

    def warm_up(self) -> None:
        self._ready_vectors()

    def _ready_vectors(self) -> TextVectors:
        if self._vectors is None:
            encoder = shared_encoder(self.model_path, max_seq_length=self.max_seq_length, threads=self.threads,
                                     runtime=self.runtime, cache_dir=self.cache_dir)
            encoder.warm_up()
            self._vectors = shared_text_vectors(encoder, Path(self.vectors_path))
        return self._vectors

    @component.output_types(documents=list[Document], precomputed=int)
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """:returns: ``documents`` as given and ``precomputed``, how many vectors were new."""
        vectors = self._ready_vectors()
        texts: list[str] = []
        for document in documents:
            heading_path = heading_path_of(document.meta)
            content = document.content or ""
            # the answer reads a chunk as stored (answerability) and as the prompt quotes it
            for source in dict.fromkeys([content, neutralise(content)]):
                texts += comparison_texts(source, heading_path)
        return {"documents": documents, "precomputed": vectors.precompute(texts)}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, vectors_path=self.vectors_path, model_path=self.model_path,
                               max_seq_length=self.max_seq_length, runtime=self.runtime, cache_dir=self.cache_dir,
                               threads=self.threads)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerVectorPrecomputer:
        return default_from_dict(cls, data)
