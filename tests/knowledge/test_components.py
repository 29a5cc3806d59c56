from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from haystack import Document, Pipeline

from core.settings import Settings
from knowledge.components.hybrid_retriever import HybridRetriever
from knowledge.components.memory_bm25_retriever import MemoryBM25Retriever
from knowledge.components.memory_embedding_retriever import MemoryEmbeddingRetriever
from knowledge.components.score_fusion import ScoreFusion
from knowledge.components.section_converter import SectionConverter
from knowledge.components.section_splitter import SectionSplitter, chunk_id
from knowledge.document_store import elasticsearch_mapping
from knowledge.persistent_store import PersistentDocumentStore
from knowledge.retrieval import build_retrieval_pipeline, metadata_filters


@pytest.mark.parametrize("component", [
    SectionConverter(max_file_bytes=1234),
    SectionSplitter(max_words=100, overlap_sentences=2),
    ScoreFusion(mode="rrf", bm25_weight=2.0, dense_weight=1.0, rrf_k=10, top_k=7),
])
def test_components_round_trip(component: Any) -> None:
    data = component.to_dict()
    assert type(component).from_dict(data).to_dict() == data


def test_retrieval_pipeline_round_trips(tmp_path) -> None:
    store = PersistentDocumentStore(path=str(tmp_path / "x.json"))
    pipeline = build_retrieval_pipeline(Settings(data_dir=tmp_path), store)
    allowed = ["knowledge.*"]
    loaded = Pipeline.loads(pipeline.dumps(), allowed_modules=allowed).to_dict()
    original = pipeline.to_dict()
    assert loaded["components"] == original["components"]
    assert sorted(map(str, loaded["connections"])) == sorted(map(str, original["connections"]))


def test_hybrid_retriever_round_trips_with_its_retrievers(tmp_path) -> None:
    store = PersistentDocumentStore(path=str(tmp_path / "x.json"))
    hybrid = HybridRetriever(bm25_retriever=MemoryBM25Retriever(document_store=store, top_k=9),
                             embedding_retriever=MemoryEmbeddingRetriever(document_store=store, top_k=9),
                             fusion=ScoreFusion(mode="rrf", rrf_k=10, top_k=3), candidates=9)
    pipeline = Pipeline()
    pipeline.add_component("hybrid", hybrid)
    # Haystack refuses to import the nested retrievers' classes unless their module is allowed
    loaded = Pipeline.loads(pipeline.dumps(), allowed_modules=["knowledge.*"]).get_component("hybrid")
    assert isinstance(loaded, HybridRetriever) and isinstance(loaded.bm25_retriever, MemoryBM25Retriever)
    assert loaded.fusion.mode == "rrf" and loaded.candidates == 9
    assert loaded.to_dict() == hybrid.to_dict()


def test_hybrid_retriever_fuses_both_candidate_lists_and_passes_filters_on(tmp_path) -> None:
    store = PersistentDocumentStore(path=str(tmp_path / "x.json"))
    store.write_documents([
        Document(id="lexical", content="factory reset procedure", embedding=[0.0, 1.0], meta={"tenant": "a"}),
        Document(id="semantic", content="restore defaults", embedding=[1.0, 0.0], meta={"tenant": "a"}),
        Document(id="other", content="factory reset procedure", embedding=[1.0, 0.0], meta={"tenant": "b"}),
    ])
    hybrid = HybridRetriever(bm25_retriever=MemoryBM25Retriever(document_store=store),
                             embedding_retriever=MemoryEmbeddingRetriever(document_store=store),
                             fusion=ScoreFusion(top_k=5), candidates=5)
    found = hybrid.run(query="factory reset", query_embedding=[1.0, 0.0],
                       filters=metadata_filters(tenant="a"))["documents"]
    assert {d.id for d in found} == {"lexical", "semantic"}
    assert all(d.meta["tenant"] == "a" for d in found)
    assert hybrid.run(query="factory reset", query_embedding=[1.0, 0.0], top_k=1)["documents"][0].id == "other"
    dense_only = HybridRetriever(bm25_retriever=None, embedding_retriever=MemoryEmbeddingRetriever(document_store=store),
                                 fusion=None, candidates=5)
    nearest = dense_only.run(query="factory reset", query_embedding=np.array([0.0, 1.0], dtype=np.float32),
                             top_k=1)["documents"]
    assert [d.id for d in nearest] == ["lexical"] and nearest[0].score == pytest.approx(1.0)
    with pytest.raises(ValueError, match="go together"):
        HybridRetriever(bm25_retriever=None, embedding_retriever=dense_only.embedding_retriever,
                        fusion=ScoreFusion(), candidates=5)


def test_query_embedding_crosses_the_pipeline_as_an_array(tmp_path) -> None:
    """A list of 384 floats is deep-copied element by element between components (13 ms); the
    embedder hands over an array, which every retriever of the pipeline accepts."""
    from knowledge.components.query_embedder import QueryEmbedder

    assert QueryEmbedder.run.__annotations__["return"] == "dict[str, np.ndarray]"
    store = PersistentDocumentStore(path=str(tmp_path / "x.json"))
    for mode in ("dense", "hybrid"):
        pipeline = build_retrieval_pipeline(Settings(data_dir=tmp_path), store, mode)  # type: ignore[arg-type]
        assert "query_embedder.embedding" in str(pipeline.to_dict()["connections"])  # connected: types checked


def test_splitter_keeps_sections_whole_and_ids_stable() -> None:
    long = " ".join(f"Sentence number {i} is here." for i in range(200))
    docs = [Document(content="Short section.", meta={"source": "s", "tenant": "t"}),
            Document(content=long, meta={"source": "s", "tenant": "t"})]
    chunks = SectionSplitter(max_words=100, overlap_sentences=1).run(documents=docs)["documents"]
    assert chunks[0].content == "Short section."
    assert all(len(c.content.split()) <= 105 for c in chunks)
    assert [c.meta["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert all(c.content.rstrip().endswith(".") for c in chunks)  # never cut mid-sentence
    again = SectionSplitter(max_words=100, overlap_sentences=1).run(documents=docs)["documents"]
    assert [c.id for c in again] == [c.id for c in chunks]
    assert chunks[0].id == chunk_id(tenant="t", source="s", chunk_index=0, content="Short section.")


def test_convex_fusion_rewards_agreement_and_keeps_raw_scores() -> None:
    bm25 = [Document(id="a", content="a", score=10.0), Document(id="b", content="b", score=9.0)]
    dense = [Document(id="b", content="b", score=0.8), Document(id="c", content="c", score=0.79)]
    fused = ScoreFusion(bm25_weight=0.5, dense_weight=0.5).run(bm25_documents=bm25, dense_documents=dense,
                                                                 top_k=3)["documents"]
    assert [d.id for d in fused] == ["b", "a", "c"]
    assert fused[0].meta["bm25_score"] == 9.0 and fused[0].meta["dense_score"] == 0.8
    assert bm25[0].score == 10.0 and "bm25_score" not in bm25[1].meta  # inputs untouched


def test_rrf_fusion_order() -> None:
    bm25 = [Document(id=x, content=x, score=1.0) for x in "abc"]
    dense = [Document(id=x, content=x, score=1.0) for x in "cab"]
    fused = ScoreFusion(mode="rrf").run(bm25_documents=bm25, dense_documents=dense)["documents"]
    assert [d.id for d in fused] == ["a", "c", "b"]


def test_fusion_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="weights"):
        ScoreFusion(bm25_weight=0, dense_weight=0)
    with pytest.raises(ValueError, match="mode"):
        ScoreFusion(mode="max")  # type: ignore[arg-type]


def test_elasticsearch_mapping() -> None:
    mapping = elasticsearch_mapping()
    props = mapping["properties"]
    assert props["embedding"] == {"type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine"}
    assert props["content"]["type"] == "text" and props["heading_path"]["type"] == "text"
    assert props["tenant"] == {"type": "keyword"} and props["source"] == {"type": "keyword"}


def test_metadata_filters() -> None:
    assert metadata_filters() is None
    assert metadata_filters(tenant="a", version="2") == {"operator": "AND", "conditions": [
        {"field": "meta.tenant", "operator": "==", "value": "a"},
        {"field": "meta.version", "operator": "==", "value": "2"}]}
