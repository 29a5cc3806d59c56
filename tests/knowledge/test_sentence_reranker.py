import pytest
from haystack import Document

from knowledge.components.sentence_reranker import SentenceReranker
from knowledge.encoder import shared_encoder


def test_to_dict_round_trip() -> None:
    reranker = SentenceReranker(weight=0.7, top_k=3, cache_size=10)
    restored = SentenceReranker.from_dict(reranker.to_dict())
    assert (restored.weight, restored.top_k, restored.cache_size) == (0.7, 3, 10)


def test_negative_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        SentenceReranker(weight=-1)


@pytest.mark.slow
def test_the_chunk_whose_sentence_answers_moves_up() -> None:
    question = "How long is the warranty on the espresso machine?"
    blurred = Document(content="The espresso machine has a steam wand. It heats milk. It has a grinder with 12 settings.",
                       score=1.0)
    answering = Document(content="Cleaning takes five minutes. The espresso machine is under warranty for two years. "
                                 "Descale it monthly.", score=0.9)
    vector = shared_encoder().encode([question])[0].tolist()
    ranked = SentenceReranker(weight=1.0, top_k=2).run(documents=[blurred, answering], query_embedding=vector)["documents"]
    assert [doc.id for doc in ranked] == [answering.id, blurred.id]
    assert ranked[0].meta["sentence_score"] > ranked[1].meta["sentence_score"]
    assert SentenceReranker(weight=0.0, top_k=2).run(
        documents=[blurred, answering], query_embedding=vector)["documents"][0].id == blurred.id


def test_empty_candidates() -> None:
    assert SentenceReranker().run(documents=[], query_embedding=[0.0] * 384)["documents"] == []
