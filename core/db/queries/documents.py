"""Document sources uploaded through the API."""

from __future__ import annotations

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
