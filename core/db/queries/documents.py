"""Document sources: uploaded through the API or ingested with ``supportbot ingest``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePath

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.db.tables import DocumentSource
from core.db.types import utc_now
from core.errors import NotFoundError


def save_document_source(session: Session, *, tenant_id: str, source: str, store_key: str, content_hash: str,
                         size_bytes: int, chunk_count: int, product: str | None = None, version: str | None = None
                         ) -> DocumentSource:
    """Create or update the record of a tenant's document."""
    row = session.exec(select(DocumentSource).where(DocumentSource.tenant_id == tenant_id,
                                                    DocumentSource.source == source)).first()
    if row is None:
        row = DocumentSource(tenant_id=tenant_id, source=source, store_key=store_key, content_hash=content_hash)
    row.store_key, row.content_hash, row.size_bytes, row.chunk_count = store_key, content_hash, size_bytes, chunk_count
    row.product, row.version, row.updated_at = product, version, utc_now()
    session.add(row)
    session.commit()
    return row


def get_document_source(session: Session, *, tenant_id: str, source: str) -> DocumentSource:
    """:raises NotFoundError: no such document in this tenant."""
    row = session.exec(select(DocumentSource).where(DocumentSource.tenant_id == tenant_id,
                                                    DocumentSource.source == source)).first()
    if row is None:
        raise NotFoundError(f"no document {source!r}")
    return row


def list_document_sources(session: Session, *, tenant_id: str, limit: int, offset: int
                          ) -> tuple[list[DocumentSource], int]:
    condition = DocumentSource.tenant_id == tenant_id
    total = session.exec(select(func.count()).select_from(DocumentSource).where(condition)).one()
    statement = (select(DocumentSource).where(condition).order_by(col(DocumentSource.source))
                 .limit(limit).offset(offset))
    return list(session.exec(statement)), int(total)


def delete_document_source(session: Session, *, tenant_id: str, source: str) -> None:
    """:raises NotFoundError: no such document in this tenant."""
    row = get_document_source(session, tenant_id=tenant_id, source=source)
    session.delete(row)
    session.commit()



@dataclass(frozen=True)
class IndexedSourceRecord:
    """What the document store holds for one source of a tenant (its chunks carry these labels)."""

    store_key: str
    file_name: str
    content_hash: str
    size_bytes: int
    chunk_count: int
    product: str | None = None
    version: str | None = None


def sync_document_sources(session: Session, *, tenant_id: str, indexed: list[IndexedSourceRecord]) -> dict[str, int]:
    """Make the tenant's records match what its document store holds: update the record of each
    indexed source (found by ``store_key``, so an upload keeps its public name), add a record for
    a source ingested another way (``supportbot ingest``) under its file name (made unique with a
    short hash of its key when another source has that name), delete records whose chunks are gone.

    :returns: counts of ``added``, ``updated`` and ``deleted`` records.
    """
    rows = list(session.exec(select(DocumentSource).where(DocumentSource.tenant_id == tenant_id)))
    by_key = {row.store_key: row for row in rows}
    taken = {row.source for row in rows}
    counts = {"added": 0, "updated": 0, "deleted": 0}
    wanted = {record.store_key for record in indexed}
    for row in rows:
        if row.store_key not in wanted:
            session.delete(row)
            taken.discard(row.source)
            counts["deleted"] += 1
    now = utc_now()
    for record in sorted(indexed, key=lambda r: r.store_key):
        found = by_key.get(record.store_key)
        if found is None:
            name = _public_name(record, taken)
            taken.add(name)
            found = DocumentSource(tenant_id=tenant_id, source=name, store_key=record.store_key,
                                 content_hash=record.content_hash)
            counts["added"] += 1
        elif (found.content_hash, found.chunk_count, found.product, found.version) == (
                record.content_hash, record.chunk_count, record.product, record.version):
            continue
        else:
            counts["updated"] += 1
        found.content_hash, found.size_bytes, found.chunk_count = (record.content_hash, record.size_bytes,
                                                                   record.chunk_count)
        found.product, found.version, found.updated_at = record.product, record.version, now
        session.add(found)
    session.commit()
    return counts


_MAX_SOURCE_CHARS = 255


def _public_name(record: IndexedSourceRecord, taken: set[str]) -> str:
    name = (record.file_name or PurePath(record.store_key).name or "document")[:_MAX_SOURCE_CHARS]
    if name not in taken:
        return name
    path = PurePath(name)
    tag = "-" + hashlib.sha256(record.store_key.encode()).hexdigest()[:8]
    stem = path.stem[: _MAX_SOURCE_CHARS - len(tag) - len(path.suffix)]
    return f"{stem}{tag}{path.suffix}"
