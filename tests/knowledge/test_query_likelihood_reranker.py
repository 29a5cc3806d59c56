"""The query-likelihood reranker, on the real SmolLM2 (slow tests share one dequantized copy)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from haystack import Document
from pydantic import ValidationError

from bot.answer_service import build_answer_service
from core.errors import ConfigError
from core.settings import Settings
from knowledge.components.query_likelihood_reranker import QueryLikelihoodReranker
from knowledge.document_store import build_document_store
from knowledge.indexing import Indexer, SourceMeta
from knowledge.retrieval import KnowledgeSearch, build_retrieval_pipeline, lm_rerank_for, metadata_filters
from tests.conftest import SAMPLES
from tests.torch_threads import one_torch_thread

# Two paragraphs of one article: both hold the question's words, only the second answers it.
FIRST = Document(content="The Broncos finished the regular season with a 12-4 record. The head coach praised the "
                         "defense, and the Broncos coach said the team would rest its starters.", score=1.0)
SECOND = Document(content="Gary Kubiak was hired as the head coach of the Denver Broncos in January 2015, after "
                          "the team parted ways with John Fox.", score=0.95)
QUESTION = "Who was hired as the head coach of the Broncos in 2015?"


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def test_to_dict_round_trip() -> None:
    reranker = QueryLikelihoodReranker(model_dir="m", cache_dir="c", weight=0.7, candidates=3, margin=0.3,
                                       max_passage_tokens=64, precision="bfloat16")
    restored = QueryLikelihoodReranker.from_dict(reranker.to_dict())
    assert (restored.model_dir, restored.cache_dir, restored.weight, restored.candidates, restored.margin,
            restored.max_passage_tokens, restored.precision) == ("m", "c", 0.7, 3, 0.3, 64, "bfloat16")


@pytest.mark.parametrize("options", [{"weight": -1.0}, {"candidates": 0}, {"margin": -0.1},
                                     {"max_passage_tokens": 8}, {"precision": "int4"}])
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        QueryLikelihoodReranker(**options)  # type: ignore[arg-type]


def test_nothing_to_reorder_loads_no_model() -> None:
    reranker = QueryLikelihoodReranker(model_dir="/nonexistent")
    assert reranker.run(query=QUESTION, documents=[])["documents"] == []
    assert reranker.run(query=QUESTION, documents=[FIRST])["documents"] == [FIRST]
    assert reranker.run(query=" ", documents=[FIRST, SECOND], top_k=1)["documents"] == [FIRST]
    assert reranker.run(query="  ", documents=[FIRST, SECOND])["documents"] == [FIRST, SECOND]
    assert reranker._loaded is None


def test_a_clear_lead_is_kept_without_reading() -> None:
    """Only the best chunk is within the margin: the order is settled and the model never loads."""
    distant = Document(content=SECOND.content, score=0.8)
    reranker = QueryLikelihoodReranker(model_dir="/nonexistent", margin=0.15)
    assert reranker.run(query=QUESTION, documents=[FIRST, distant])["documents"] == [FIRST, distant]
    assert reranker.run(query=QUESTION, documents=[FIRST, distant], top_k=1)["documents"] == [FIRST]
    assert reranker._loaded is None
    with pytest.raises(ConfigError):  # within a margin of 0.25 it must read both, so it tries to load the model
        QueryLikelihoodReranker(model_dir="/nonexistent", margin=0.25).run(query=QUESTION, documents=[FIRST, distant])


@pytest.mark.slow
def test_the_paragraph_that_answers_moves_first(smollm2_dir: Path) -> None:
    third = Document(content="Descale the espresso machine every 200 cups.", score=0.9)
    reranker = QueryLikelihoodReranker(cache_dir=str(smollm2_dir), weight=1.0, candidates=2)
    ranked = reranker.run(query=QUESTION, documents=[FIRST, SECOND, third])["documents"]
    assert [doc.id for doc in ranked] == [SECOND.id, FIRST.id, third.id]  # the third was not read
    assert "query_likelihood" not in ranked[2].meta
    # within the candidates but outside the margin: not read either
    distant = Document(content=third.content, score=0.5)
    ranked = QueryLikelihoodReranker(cache_dir=str(smollm2_dir), weight=1.0, candidates=4, margin=0.15).run(
        query=QUESTION, documents=[FIRST, SECOND, distant])["documents"]
    assert [doc.id for doc in ranked] == [SECOND.id, FIRST.id, distant.id]
    assert ranked[0].meta["query_likelihood"] > ranked[1].meta["query_likelihood"]
    assert ranked[0].meta["fused_score"] == 0.95 and "query_likelihood" not in ranked[2].meta
    assert ranked[0].score > ranked[1].score
    unweighted = QueryLikelihoodReranker(cache_dir=str(smollm2_dir), weight=0.0).run(query=QUESTION,
                                                                                   documents=[FIRST, SECOND])
    assert [doc.id for doc in unweighted["documents"]] == [FIRST.id, SECOND.id]


@pytest.mark.slow
def test_a_passage_scores_the_same_alone_and_beside_a_longer_one(smollm2_dir: Path) -> None:
    """The batch is left-padded: padding must not change what the question is scored after."""
    reranker = QueryLikelihoodReranker(cache_dir=str(smollm2_dir), precision="float32")
    alone = reranker.question_likelihoods(QUESTION, [SECOND.content or ""])
    batched = reranker.question_likelihoods(QUESTION, [(FIRST.content or "") * 3, SECOND.content or ""])
    assert batched[1] == pytest.approx(alone[0], abs=1e-3)
    unrelated = reranker.question_likelihoods(QUESTION, ["Descale the espresso machine every 200 cups."])
    assert alone[0] > unrelated[0] + 0.5
    bf16 = QueryLikelihoodReranker(cache_dir=str(smollm2_dir), precision="bfloat16")
    assert bf16.question_likelihoods(QUESTION, [SECOND.content or ""])[0] == pytest.approx(alone[0], abs=0.1)


@pytest.mark.slow
def test_long_passages_are_cut_to_the_token_budget(smollm2_dir: Path) -> None:
    reranker = QueryLikelihoodReranker(cache_dir=str(smollm2_dir), max_passage_tokens=32)
    reranker.warm_up()
    assert len(reranker._prefix_ids("word " * 5000)) < 32 + 16
    scores = reranker.question_likelihoods(QUESTION, ["word " * 5000, SECOND.content or ""])
    assert len(scores) == 2 and all(score < 0 for score in scores)


@pytest.mark.slow
def test_search_reranks_with_the_language_model(tmp_path: Path, smollm2_dir: Path) -> None:
    manuals = tmp_path / "manuals"
    shutil.copytree(SAMPLES, manuals, ignore=shutil.ignore_patterns("*.py", "README.md"))
    settings = Settings(data_dir=tmp_path / "data")
    settings.generator.local.model_dir = str(smollm2_dir)
    store = build_document_store(settings)
    Indexer(settings, store).ingest([str(manuals)], SourceMeta(tenant="acme"))
    plain = KnowledgeSearch(settings, store).search("how do I factory reset the router", top_k=6,
                                                    filters=metadata_filters(tenant="acme"))
    settings.retrieval.lm_rerank = True
    settings.retrieval.lm_rerank_margin = 1.0  # read every candidate
    assert "lm_reranker" in build_retrieval_pipeline(settings, store, lm_rerank=lm_rerank_for(settings)).graph.nodes
    search = KnowledgeSearch(settings, store)
    reranked = search.search("how do I factory reset the router", top_k=6, filters=metadata_filters(tenant="acme"))
    assert {doc.id for doc in reranked} == {doc.id for doc in plain}  # reordered, nothing added or lost
    assert all("query_likelihood" in doc.meta for doc in reranked[:4])
    assert [doc.id for doc in reranked[4:]] == [doc.id for doc in plain[4:]]
    assert reranked[0].meta["heading_path"][-1] == "Factory reset"
    # a single result is still chosen among the language model's candidates
    best = search.search("how do I factory reset the router", top_k=1, filters=metadata_filters(tenant="acme"))
    assert [doc.id for doc in best] == [reranked[0].id] and "query_likelihood" in best[0].meta
    assert search.search("factory reset", filters=metadata_filters(tenant="other")) == []
    # at the default margin only the chunks whose fused score is close to the best are read
    settings.retrieval.lm_rerank_margin = Settings().retrieval.lm_rerank_margin
    gated = KnowledgeSearch(settings, store).search("how do I factory reset the router", top_k=6,
                                                    filters=metadata_filters(tenant="acme"))
    read = [doc for doc in gated if "query_likelihood" in doc.meta]
    floor = (1 - settings.retrieval.lm_rerank_margin) * plain[0].score
    close = [doc.id for doc in plain[:4] if doc.score >= floor]
    assert {doc.id for doc in read} == (set(close) if len(close) > 1 else set())
    assert [doc.id for doc in gated[len(read):]] == [doc.id for doc in plain if doc.id not in {d.id for d in read}]


def test_auto_reranks_only_the_local_generators_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.retrieval.lm_rerank == "auto" and settings.generator.backend == "local"
    writers = ("local", "extractive", "remote", None)
    assert [lm_rerank_for(settings, name) for name in writers] == [True, False, False, False]
    for setting in (True, False):
        settings.retrieval.lm_rerank = setting
        assert [lm_rerank_for(settings, name) for name in writers] == [setting] * 4
    for value, parsed in (("auto", "auto"), ("true", True), ("false", False)):
        monkeypatch.setenv("SUPPORTBOT_RETRIEVAL__LM_RERANK", value)
        assert Settings().retrieval.lm_rerank == parsed
    monkeypatch.setenv("SUPPORTBOT_RETRIEVAL__LM_RERANK", "sometimes")
    with pytest.raises(ValidationError, match="lm_rerank"):
        Settings()


def test_the_answer_service_reranks_for_the_local_generator_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")  # lm_rerank "auto", generator.backend "local"
    local = build_answer_service(settings)
    assert local.pipeline.search.lm_rerank and "lm_reranker" in local.pipeline.search.pipeline.graph.nodes
    extractive = build_answer_service(settings, generator="extractive")
    assert not extractive.pipeline.search.lm_rerank
    assert "lm_reranker" not in extractive.pipeline.search.pipeline.graph.nodes
    assert not (settings.data_dir / "models").exists()  # built, nothing loaded before warm_up
