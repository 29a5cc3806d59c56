"""Documents uploaded through the API: safe names, saved under ``data_dir/uploads/<tenant>/``,
ingested with the tenant's label, recorded in ``document_source``; and deleted again. Files ingested
with ``supportbot ingest`` are recorded from the store by :func:`record_indexed_sources`.

A file name is reduced to its last path component and to letters, digits, ``.``, ``-``, ``_`` and
spaces, so no upload can write outside its tenant's folder (``../../etc/passwd`` becomes
``passwd`` with an unsupported type and is refused).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from haystack.document_stores.types import DocumentStore
from sqlalchemy import Engine

from api.schemas import UploadResult, public_source
from api.state import AppState
from core.db.engine import open_session
from core.db.queries import documents
from core.errors import InvalidInputError, PayloadTooLargeError, UnsupportedFileError
from knowledge.indexing import Indexer, SourceMeta
from knowledge.parsing import SUPPORTED_SUFFIXES
from knowledge.persistent_store import PersistentDocumentStore
from knowledge.retrieval import metadata_filters

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
MAX_NAME_CHARS = 120


@dataclass(frozen=True)
class Upload:
    file_name: str
    data: bytes


def safe_file_name(name: str | None) -> str:
    """The name an upload is stored and listed under.

    :raises InvalidInputError: nothing usable is left of the name.
    :raises UnsupportedFileError: its type cannot be ingested.
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKC", base)
    base = _UNSAFE.sub("_", base).strip(" .")
    if len(base) > MAX_NAME_CHARS:
        stem, suffix = Path(base).stem, Path(base).suffix
        base = stem[: MAX_NAME_CHARS - len(suffix)] + suffix
    if not base or base.startswith("."):
        raise InvalidInputError(f"file name {name!r} has no usable characters")
    if Path(base).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UnsupportedFileError(f"{base}: unsupported type; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    return base


def upload_folder(state: AppState, tenant_id: str) -> Path:
    return (state.settings.data_dir / "uploads" / tenant_id).resolve()


def add_documents(state: AppState, *, tenant_id: str, uploads: list[Upload], product: str | None,
                  version: str | None) -> list[UploadResult]:
    """Save and ingest the files; each gets its own result. A file that fails keeps its previous
    version (if any) in place.

    :raises InvalidInputError: no file, a bad name or a duplicate name in one request.
    :raises UnsupportedFileError: a file type that cannot be ingested (nothing is stored).
    """
    if not uploads:
        raise InvalidInputError("no file uploaded (multipart field `files`)")
    names = [safe_file_name(upload.file_name) for upload in uploads]
    if len(set(names)) != len(names):
        raise InvalidInputError("two uploaded files have the same name")
    limit = state.settings.chunking.max_file_bytes
    for name, upload in zip(names, uploads, strict=True):
        if len(upload.data) > limit:
            raise PayloadTooLargeError(f"{name} is over the limit of {limit} bytes (SUPPORTBOT_CHUNKING__MAX_FILE_BYTES)")
    folder = upload_folder(state, tenant_id)
    folder.mkdir(parents=True, exist_ok=True)
    with state.index_lock:
        previous = {name: _read(folder / name) for name in names}
        for name, upload in zip(names, uploads, strict=True):
            (folder / name).write_bytes(upload.data)
        indexer = Indexer(state.settings, state.store)
        summary = indexer.ingest([str(folder / name) for name in names],
                                 SourceMeta(tenant=tenant_id, product=product, version=version))
        failed = {Path(source).name: reason for source, reason in summary.failed}
        twins = {Path(source).name: public_source(twin) for source, twin in summary.duplicates}
        results = []
        for name, upload in zip(names, uploads, strict=True):
            path = folder / name
            if name in failed or name in twins:
                _restore(path, previous[name])
                results.append(UploadResult(source=name, status="failed" if name in failed else "duplicate",
                                            reason=failed.get(name) or f"same content as {twins[name]}"))
                continue
            chunks = _chunk_count(state.store, tenant_id, str(path))
            with open_session(state.engine) as session:
                documents.save_document_source(session, tenant_id=tenant_id, source=name, store_key=str(path),
                                               content_hash=hashlib.sha256(upload.data).hexdigest(),
                                               size_bytes=len(upload.data), chunk_count=chunks,
                                               product=product, version=version)
            before = previous[name]
            status: Literal["new", "changed", "unchanged"] = (
                "new" if before is None else "unchanged" if before == upload.data else "changed")
            results.append(UploadResult(source=name, status=status, chunks=chunks))
    return results


def delete_document(state: AppState, *, tenant_id: str, source: str) -> None:
    """Remove a document's chunks, its file and its record.

    :raises NotFoundError: no such document in this tenant.
    """
    with state.index_lock, open_session(state.engine) as session:
        row = documents.get_document_source(session, tenant_id=tenant_id, source=source)
        filters = {"operator": "AND", "conditions": [
            {"field": "meta.tenant", "operator": "==", "value": tenant_id},
            {"field": "meta.source", "operator": "==", "value": row.store_key}]}
        ids = [doc.id for doc in state.store.filter_documents(filters=filters)]
        if ids:
            state.store.delete_documents(ids)
        if isinstance(state.store, PersistentDocumentStore):
            state.store.save()
        path = Path(row.store_key)
        if upload_folder(state, tenant_id) in path.parents:
            path.unlink(missing_ok=True)
        documents.delete_document_source(session, tenant_id=tenant_id, source=source)


def record_indexed_sources(engine: Engine, store: DocumentStore, *, tenant_id: str) -> dict[str, int]:
    """Bring the tenant's ``document_source`` records in line with its chunks in the store, so files
    ingested with ``supportbot ingest`` are listed (and deletable) like uploads. Run after an ingest.

    :returns: counts of ``added``, ``updated`` and ``deleted`` records.
    """
    indexed: dict[str, documents.IndexedSourceRecord] = {}
    chunk_counts: dict[str, int] = {}
    for chunk in store.filter_documents(filters=metadata_filters(tenant=tenant_id)):
        key = str(chunk.meta.get("source", ""))
        chunk_counts[key] = chunk_counts.get(key, 0) + 1
        if key and key not in indexed:
            path = Path(key)
            indexed[key] = documents.IndexedSourceRecord(
                store_key=key, file_name=str(chunk.meta.get("file_name") or ""),
                content_hash=str(chunk.meta.get("source_hash", "")),
                size_bytes=path.stat().st_size if not key.startswith(("http://", "https://")) and path.is_file() else 0,
                chunk_count=0, product=chunk.meta.get("product"), version=chunk.meta.get("version"))
    records = [replace(record, chunk_count=chunk_counts[key]) for key, record in indexed.items()]
    with open_session(engine) as session:
        return documents.sync_document_sources(session, tenant_id=tenant_id, indexed=records)


def _chunk_count(store: DocumentStore, tenant_id: str, store_key: str) -> int:
    base = metadata_filters(tenant=tenant_id) or {"operator": "AND", "conditions": []}
    filters = {"operator": "AND", "conditions": [*base["conditions"],
                                                 {"field": "meta.source", "operator": "==", "value": store_key}]}
    return len(store.filter_documents(filters=filters))


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _restore(path: Path, previous: bytes | None) -> None:
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(previous)

