"""``sync_document_sources``: the records follow the store, an upload keeps its public name, two
ingested files with one name get distinct names, records of pruned sources go."""

from __future__ import annotations

from sqlmodel import Session

from core.db.queries import documents, tenants
from core.db.queries.documents import IndexedSourceRecord


def _record(key: str, name: str, chunks: int = 3, content_hash: str = "h1") -> IndexedSourceRecord:
    return IndexedSourceRecord(store_key=key, file_name=name, content_hash=content_hash, size_bytes=10,
                               chunk_count=chunks, product="r7")


def test_records_follow_the_store(session: Session) -> None:
    tenants.create_tenant(session, tenant_id="acme")
    tenants.create_tenant(session, tenant_id="globex")
    documents.save_document_source(session, tenant_id="acme", source="upload.md", store_key="/up/acme/upload.md",
                                   content_hash="u", size_bytes=1, chunk_count=1)
    indexed = [_record("/up/acme/upload.md", "upload.md", content_hash="u2"),
               _record("/a/README.md", "README.md"), _record("/b/README.md", "README.md")]
    counts = documents.sync_document_sources(session, tenant_id="acme", indexed=indexed)
    assert counts == {"added": 2, "updated": 1, "deleted": 0}
    rows, total = documents.list_document_sources(session, tenant_id="acme", limit=10, offset=0)
    by_key = {row.store_key: row for row in rows}
    assert total == 3 and by_key["/up/acme/upload.md"].source == "upload.md"
    assert by_key["/up/acme/upload.md"].content_hash == "u2"
    names = {by_key["/a/README.md"].source, by_key["/b/README.md"].source}
    assert "README.md" in names and len(names) == 2
    assert all(name.endswith(".md") for name in names)

    # Unchanged: nothing written; a source gone from the store loses its record; other tenants untouched.
    assert documents.sync_document_sources(session, tenant_id="acme", indexed=indexed) == {
        "added": 0, "updated": 0, "deleted": 0}
    assert documents.sync_document_sources(session, tenant_id="acme", indexed=indexed[:2])["deleted"] == 1
    assert documents.list_document_sources(session, tenant_id="acme", limit=10, offset=0)[1] == 2
    assert documents.list_document_sources(session, tenant_id="globex", limit=10, offset=0)[1] == 0
