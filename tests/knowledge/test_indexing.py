from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InvalidInputError
from core.settings import Settings
from knowledge.document_store import build_document_store
from knowledge.indexing import Indexer, SourceMeta
from knowledge.persistent_store import PersistentDocumentStore
from knowledge.retrieval import KnowledgeSearch, metadata_filters

pytestmark = pytest.mark.slow


def _ingest(settings: Settings, targets: list[str], *, tenant: str = "acme", prune: bool = False):
    store = build_document_store(settings)
    return Indexer(settings, store).ingest(targets, SourceMeta(tenant=tenant, product="demo"), prune=prune), store


def test_ingest_is_incremental_and_prunes(settings: Settings, samples_copy: Path) -> None:
    first, store = _ingest(settings, [str(samples_copy)])
    assert (first.new, first.changed, first.unchanged, first.failed) == (6, 0, 0, [])
    total = store.count_documents()
    assert total == first.chunks_written > 10
    chunk = next(iter(store.filter_documents()))
    assert {"tenant", "product", "source", "source_hash", "title", "heading_path", "chunk_index"} <= set(chunk.meta)

    again, store = _ingest(settings, [str(samples_copy)])
    assert (again.new, again.changed, again.unchanged, again.chunks_written) == (0, 0, 6, 0)
    assert store.count_documents() == total

    guide = samples_copy / "nimbus-r7/user-guide.md"
    guide.write_text(guide.read_text().replace("10 seconds", "15 seconds"))
    changed, store = _ingest(settings, [str(samples_copy)])
    assert (changed.changed, changed.unchanged) == (1, 5)
    texts = [d.content for d in store.filter_documents() if d.meta["source"] == str(guide.resolve())]
    assert any("15 seconds" in t for t in texts) and not any("10 seconds" in t for t in texts)
    assert store.count_documents() == total

    (samples_copy / "nimbus-r7/warranty.txt").unlink()
    pruned, store = _ingest(settings, [str(samples_copy)], prune=True)
    assert len(pruned.pruned_sources) == 1 and store.count_documents() < total


def test_bad_files_are_reported_and_lose_nothing(settings: Settings, samples_copy: Path, tmp_path: Path) -> None:
    _, store = _ingest(settings, [str(samples_copy)])
    before = store.count_documents()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "garbage.pdf").write_bytes(b"\x00\xff" * 5000)
    (bad / "empty.md").write_bytes(b"")
    (bad / "script.html").write_text("<script>alert(1)</script>")
    (bad / "copy.md").write_bytes((samples_copy / "lumen-brew3/faq.md").read_bytes())
    summary, store = _ingest(settings, [str(bad), str(tmp_path / "missing")])
    reasons = dict(summary.failed)
    assert "not a PDF" in reasons[str((bad / "garbage.pdf").resolve())]
    assert reasons[str((bad / "empty.md").resolve())] == "empty file"
    assert reasons[str((bad / "script.html").resolve())] == "no text found"
    assert reasons[str(tmp_path / "missing")] == "no such file or directory"
    assert summary.duplicates and summary.duplicates[0][0].endswith("copy.md")
    assert store.count_documents() == before


def test_oversized_file_is_refused_before_reading(tmp_path: Path, samples_copy: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", chunking={"max_file_bytes": 1000})
    summary, _ = _ingest(settings, [str(samples_copy / "nimbus-r7/user-guide.md")])
    assert "over the limit" in summary.failed[0][1]


def test_persisted_index_reloads_and_save_is_atomic(settings: Settings, samples_copy: Path) -> None:
    _, store = _ingest(settings, [str(samples_copy)])
    assert isinstance(store, PersistentDocumentStore) and store.path
    reloaded = build_document_store(settings)
    assert reloaded.count_documents() == store.count_documents()
    assert {d.id for d in reloaded.filter_documents()} == {d.id for d in store.filter_documents()}
    assert all(d.embedding is not None and len(d.embedding) == 384 for d in reloaded.filter_documents())
    # No temporary files left next to the index, and the file is valid JSON.
    index_dir = Path(store.path).parent
    assert [p.name for p in index_dir.iterdir()] == ["documents.json"]
    json.loads(Path(store.path).read_text())


def test_hybrid_search_finds_sections_and_isolates_tenants(settings: Settings, samples_copy: Path) -> None:
    _ingest(settings, [str(samples_copy)], tenant="acme")
    search = KnowledgeSearch(settings, build_document_store(settings))
    search.warm_up()
    hits = search.search("how do I factory reset the router", filters=metadata_filters(tenant="acme"))
    assert hits[0].meta["heading_path"][-1] == "Factory reset"
    descale = search.search("descaling every how many cups", filters=metadata_filters(tenant="acme"))
    assert descale[0].meta.get("page") == 3
    assert search.search("factory reset", filters=metadata_filters(tenant="other")) == []
    assert search.search("factory reset", filters=metadata_filters(tenant="acme", product="nope")) == []
    for bad in ("", "   ", "x" * 100_000):
        with pytest.raises(InvalidInputError):
            search.search(bad)
