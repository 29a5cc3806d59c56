from __future__ import annotations

import hashlib
import re
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def chunk_id(*, tenant: str, source: str, chunk_index: int, content: str) -> str:
    """Stable id: the same text at the same place of the same source always gets the same id."""
    key = "\x1f".join((tenant, source, str(chunk_index), content))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _split_sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(paragraph) if s.strip()]


def _pack(units: list[str], max_words: int, overlap: int) -> list[str]:
    """Greedily pack text units (paragraphs or sentences) into chunks of at most ``max_words``."""
    chunks: list[list[str]] = []
    current: list[str] = []
    words = 0
    for unit in units:
        size = len(unit.split())
        if current and words + size > max_words:
            chunks.append(current)
            carried = _split_sentences(current[-1])[-overlap:] if overlap else []
            current, words = list(carried), sum(len(s.split()) for s in carried)
        current.append(unit)
        words += size
    if current:
        chunks.append(current)
    return ["\n".join(chunk) for chunk in chunks]


@component
class SectionSplitter:
    """Keeps each section whole when it fits ``max_words``; otherwise splits it at paragraph, then
    sentence boundaries (never mid-sentence), carrying ``overlap_sentences`` into the next chunk.
    Assigns stable chunk ids and ``chunk_index`` (position within the source).

    Usage::

        chunks = SectionSplitter(max_words=300).run(documents=sections)["documents"]
    """

    def __init__(self, max_words: int = 320, overlap_sentences: int = 1) -> None:
        if max_words < 20:
            raise ValueError("max_words must be at least 20")
        if overlap_sentences < 0:
            raise ValueError("overlap_sentences cannot be negative")
        self.max_words = max_words
        self.overlap_sentences = overlap_sentences

    def _split(self, text: str) -> list[str]:
        if len(text.split()) <= self.max_words:
            return [text]
        units: list[str] = []
        for paragraph in text.split("\n"):
            if len(paragraph.split()) <= self.max_words:
                units.append(paragraph)
                continue
            for sentence in _split_sentences(paragraph):
                words = sentence.split()
                # A "sentence" longer than a chunk (a table, a run-on list) is cut at word bounds.
                units.extend(" ".join(words[i : i + self.max_words]) for i in range(0, len(words), self.max_words))
        return _pack(units, self.max_words, self.overlap_sentences)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """
        :param documents: sections in reading order (several sources may be mixed).
        :returns: chunks with ids, ``chunk_index`` and ``chunk_count`` per source.
        """
        next_index: dict[str, int] = {}
        chunks: list[Document] = []
        for section in documents:
            source = str(section.meta.get("source", ""))
            tenant = str(section.meta.get("tenant", ""))
            for piece in self._split(section.content or ""):
                index = next_index.get(source, 0)
                next_index[source] = index + 1
                meta = {**section.meta, "chunk_index": index}
                chunks.append(Document(
                    id=chunk_id(tenant=tenant, source=source, chunk_index=index, content=piece),
                    content=piece, meta=meta))
        return {"documents": chunks}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, max_words=self.max_words, overlap_sentences=self.overlap_sentences)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SectionSplitter:
        return default_from_dict(cls, data)
