"""Incremental ingestion: files -> sections -> chunks -> embeddings -> document store.

Unchanged files are skipped by content hash; a changed file's old chunks are deleted once its new
chunks are written (a failed re-parse keeps the old ones); ``prune`` deletes the chunks of files that
are gone. The embedded store is saved atomically once at the end, so an interrupted run leaves the
previous index intact; on Elasticsearch the next run converges to the same state.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document, Pipeline
from haystack.components.writers import DocumentWriter
from haystack.dataclasses import ByteStream
from haystack.document_stores.types import DocumentStore, DuplicatePolicy
from tqdm import tqdm

from core.settings import Settings
from knowledge.components.answer_vector_precomputer import AnswerVectorPrecomputer
from knowledge.components.document_embedder import DocumentEmbedder
from knowledge.components.section_converter import SectionConverter
from knowledge.components.section_splitter import SectionSplitter
from knowledge.encoder import encoder_options
from knowledge.generation.factory import answer_vectors_path, extractive_uses_encoder
from knowledge.persistent_store import PersistentDocumentStore
from knowledge.retrieval import metadata_filters
from knowledge.sources import LoadedSource, SourceError, SourceRef, discover, load

FILES_PER_BATCH = 16


def build_indexing_pipeline(settings: Settings, store: DocumentStore, *, progress_bar: bool = False) -> Pipeline:
    """``converter`` -> ``splitter`` -> ``embedder`` -> (``answer_vectors``, when answers compare texts by
    meaning) -> ``writer``."""
    pipeline = Pipeline()
    pipeline.add_component("converter", SectionConverter(max_file_bytes=settings.chunking.max_file_bytes))
    pipeline.add_component("splitter", SectionSplitter(max_words=settings.chunking.max_words,
                                                       overlap_sentences=settings.chunking.overlap_sentences))
    pipeline.add_component("embedder", DocumentEmbedder(batch_size=settings.embedding.batch_size,
                                                        progress_bar=progress_bar, **encoder_options(settings)))
    pipeline.add_component("writer", DocumentWriter(document_store=store, policy=DuplicatePolicy.OVERWRITE))
    pipeline.connect("converter.documents", "splitter.documents")
    pipeline.connect("splitter.documents", "embedder.documents")
    if extractive_uses_encoder(settings):
        pipeline.add_component("answer_vectors", AnswerVectorPrecomputer(vectors_path=str(answer_vectors_path(settings)),
                                                                         **encoder_options(settings)))
        pipeline.connect("embedder.documents", "answer_vectors.documents")
        pipeline.connect("answer_vectors.documents", "writer.documents")
    else:
        pipeline.connect("embedder.documents", "writer.documents")
    return pipeline


@dataclass
class IngestSummary:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (source, same content as)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    skipped_unsupported: list[str] = field(default_factory=list)
    pruned_sources: list[str] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new, "changed": self.changed, "unchanged": self.unchanged,
            "duplicates": [{"source": s, "same_as": o} for s, o in self.duplicates],
            "failed": [{"source": s, "reason": r} for s, r in self.failed],
            "warnings": [{"source": s, "reason": r} for s, r in self.warnings],
            "skipped_unsupported": len(self.skipped_unsupported),
            "pruned": self.pruned_sources, "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted, "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class IndexedSource:
    content_hash: str
    chunk_ids: frozenset[str]


@dataclass(frozen=True)
class SourceMeta:
    """What every chunk of an ingest run is labelled with (the retrieval filters)."""

    tenant: str
    product: str | None = None
    version: str | None = None

    def as_meta(self) -> dict[str, str]:
        return {k: v for k, v in {"tenant": self.tenant, "product": self.product,
                                  "version": self.version}.items() if v is not None}


class Indexer:
    """Ingests sources into a store, incrementally.

    Usage::

        indexer = Indexer(settings, store)
        summary = indexer.ingest(["manuals/"], SourceMeta(tenant="acme", product="r7"), prune=True)
    """

    def __init__(self, settings: Settings, store: DocumentStore, *, progress_bar: bool = False) -> None:
        self.settings = settings
        self.store = store
        self.progress_bar = progress_bar
        self.pipeline = build_indexing_pipeline(settings, store, progress_bar=progress_bar)

    def indexed_sources(self, tenant: str) -> dict[str, IndexedSource]:
        """The sources of a tenant already in the store, with their content hash and chunk ids."""
        hashes: dict[str, set[str]] = {}
        ids: dict[str, set[str]] = {}
        for doc in self.store.filter_documents(filters=metadata_filters(tenant=tenant)):
            source = str(doc.meta.get("source", ""))
            hashes.setdefault(source, set()).add(str(doc.meta.get("source_hash", "")))
            ids.setdefault(source, set()).add(doc.id)
        # A source whose chunks disagree on the hash was interrupted half-way: treat it as changed.
        return {source: IndexedSource(content_hash=next(iter(h)) if len(h) == 1 else "", chunk_ids=frozenset(ids[source]))
                for source, h in hashes.items()}

    def ingest(self, targets: list[str], labels: SourceMeta, *, prune: bool = False) -> IngestSummary:
        started = time.perf_counter()
        summary = IngestSummary()
        refs, errors, skipped = discover(targets)
        summary.failed.extend(errors)
        summary.skipped_unsupported.extend(skipped)
        existing = self.indexed_sources(labels.tenant)
        by_hash = {entry.content_hash: source for source, entry in existing.items() if entry.content_hash}

        pending: list[LoadedSource] = []
        bar = tqdm(total=len(refs), desc="ingest", unit="file", disable=not self.progress_bar, file=sys.stderr)
        with bar:
            for ref in refs:
                try:
                    loaded = load(ref, max_bytes=self.settings.chunking.max_file_bytes)
                except SourceError as exc:
                    summary.failed.append((ref.key, str(exc)))
                    bar.update(1)
                    continue
                previous = existing.get(ref.key)
                if previous is not None and previous.content_hash == loaded.content_hash:
                    summary.unchanged += 1
                    bar.update(1)
                    continue
                twin = by_hash.get(loaded.content_hash)
                if twin is not None and twin != ref.key:
                    summary.duplicates.append((ref.key, twin))
                    bar.update(1)
                    continue
                by_hash[loaded.content_hash] = ref.key
                pending.append(loaded)
                if len(pending) >= FILES_PER_BATCH:
                    self._index_batch(pending, labels, existing, summary)
                    bar.update(len(pending))
                    pending = []
            if pending:
                self._index_batch(pending, labels, existing, summary)
                bar.update(len(pending))

        if prune:
            self._prune(targets, refs, existing, summary)
        if isinstance(self.store, PersistentDocumentStore):
            self.store.save()
        summary.seconds = time.perf_counter() - started
        return summary

    def _index_batch(self, batch: list[LoadedSource], labels: SourceMeta, existing: dict[str, IndexedSource],
                     summary: IngestSummary) -> None:
        streams = []
        for loaded in batch:
            meta: dict[str, Any] = {**labels.as_meta(), "source": loaded.ref.key, "file_name": loaded.ref.file_name,
                                    "source_hash": loaded.content_hash,
                                    "file_type": Path(loaded.ref.file_name).suffix.lower().lstrip(".")}
            if loaded.ref.url:
                meta["url"] = loaded.ref.url
            streams.append(ByteStream(data=loaded.data, meta=meta))
        result = self.pipeline.run({"converter": {"sources": streams}},
                                   include_outputs_from={"converter", "splitter"})
        failed = {failure["source"] for failure in result["converter"]["failures"]}
        summary.failed.extend((f["source"], f["reason"]) for f in result["converter"]["failures"])
        summary.warnings.extend((w["source"], w["reason"]) for w in result["converter"]["warnings"])
        chunks: list[Document] = result["splitter"]["documents"]
        summary.chunks_written += int(result["writer"]["documents_written"])
        new_ids: dict[str, set[str]] = {}
        for chunk in chunks:
            new_ids.setdefault(str(chunk.meta["source"]), set()).add(chunk.id)
        for loaded in batch:
            key = loaded.ref.key
            if key in failed:
                continue
            previous = existing.get(key)
            if previous is None:
                summary.new += 1
                continue
            summary.changed += 1
            stale = sorted(previous.chunk_ids - new_ids.get(key, set()))
            if stale:
                self.store.delete_documents(stale)
                summary.chunks_deleted += len(stale)

    def _prune(self, targets: Iterable[str], refs: list[SourceRef], existing: dict[str, IndexedSource],
               summary: IngestSummary) -> None:
        roots = [Path(t).resolve() for t in targets if not t.startswith(("http://", "https://"))]
        present = {ref.key for ref in refs}
        for source, entry in existing.items():
            path = Path(source)
            under_root = any(path == root or root in path.parents for root in roots)
            if under_root and source not in present and not path.exists():
                self.store.delete_documents(sorted(entry.chunk_ids))
                summary.pruned_sources.append(source)
                summary.chunks_deleted += len(entry.chunk_ids)
