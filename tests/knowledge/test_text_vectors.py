"""The answer vector file: vectors encoded once (at ingestion), read back by answers."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from core.settings import Settings
from knowledge.encoder import SentenceEncoder, shared_encoder
from knowledge.text_vectors import TextVectors

pytestmark = pytest.mark.slow

TEXTS = ["Factory reset: Press and hold the reset button for 10 seconds.", "reset", "amber",
         "Warranty: The router is covered for two years."]


class CountingEncoder(SentenceEncoder):
    """The real MiniLM encoder (ONNX), recording every text it is asked to encode."""

    def __init__(self, max_seq_length: int = 256) -> None:
        super().__init__(runtime="onnx", max_seq_length=max_seq_length)
        self._real = shared_encoder(runtime="onnx", max_seq_length=max_seq_length)
        self.encoded: list[str] = []
        self._count_lock = threading.Lock()

    def warm_up(self) -> None:
        self._real.warm_up()

    @property
    def dimension(self) -> int:
        return self._real.dimension

    def encode(self, texts: Sequence[str], **kwargs: object) -> np.ndarray:
        with self._count_lock:
            self.encoded += list(texts)
        return self._real.encode(texts)


def test_vectors_are_the_encoders_and_are_encoded_once(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    vectors = TextVectors(encoder, tmp_path / "v.sqlite")
    got = vectors([*TEXTS, TEXTS[0]])
    expected = encoder._real.encode(TEXTS)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(got, [*expected, expected[0]], strict=True))
    assert sorted(encoder.encoded) == sorted(TEXTS)  # the repeated text once
    vectors(TEXTS[:2])
    assert len(encoder.encoded) == len(TEXTS)


def test_precomputed_vectors_survive_a_restart_and_no_question_encodes_them(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    assert TextVectors(CountingEncoder(), path).precompute(TEXTS) == len(TEXTS)
    assert TextVectors(CountingEncoder(), path).precompute(TEXTS) == 0
    restarted = CountingEncoder()
    got = TextVectors(restarted, path)(TEXTS)
    assert restarted.encoded == []
    assert np.allclose(np.stack(got), restarted._real.encode(TEXTS), atol=1e-6)


def test_another_encoder_configuration_does_not_read_the_vectors(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    TextVectors(CountingEncoder(), path).precompute(TEXTS)
    other = CountingEncoder(max_seq_length=128)
    TextVectors(other, path)(TEXTS)
    assert sorted(other.encoded) == sorted(TEXTS)


def test_a_damaged_file_is_reported_and_answers_still_get_vectors(tmp_path: Path, caplog) -> None:
    path = tmp_path / "v.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    encoder = CountingEncoder()
    with caplog.at_level(logging.WARNING, logger="knowledge.text_vectors"):
        got = TextVectors(encoder, path)(TEXTS)
    assert "not usable" in caplog.text and str(path) in caplog.text
    assert np.allclose(np.stack(got), encoder._real.encode(TEXTS), atol=1e-6)


def test_a_truncated_vector_is_encoded_again(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    TextVectors(CountingEncoder(), path).precompute(TEXTS)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE text_vectors SET vector = substr(vector, 1, 100)")
    encoder = CountingEncoder()
    got = TextVectors(encoder, path)(TEXTS)
    assert sorted(encoder.encoded) == sorted(TEXTS)
    assert all(vector.shape == (384,) for vector in got)
    assert TextVectors(CountingEncoder(), path).precompute(TEXTS) == 0  # repaired in the file


def test_concurrent_questions_get_the_right_vectors(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    vectors = TextVectors(encoder, tmp_path / "v.sqlite", memory_entries=3)  # evictions while others read
    expected = dict(zip(TEXTS, encoder._real.encode(TEXTS), strict=True))
    failures: list[str] = []

    def ask(offset: int) -> None:
        for round_ in range(20):
            order = [TEXTS[(offset + round_ + i) % len(TEXTS)] for i in range(len(TEXTS))]
            for text, vector in zip(order, vectors(order), strict=True):
                if not np.allclose(vector, expected[text], atol=1e-6):
                    failures.append(text)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_ingestion_precomputes_what_answers_compare(tmp_path: Path) -> None:
    """After the sample manuals are indexed, an extractive answer encodes only the question and its own
    words: every sentence and section word it compares was encoded at ingestion."""
    from knowledge.answering import source_context
    from knowledge.components.answer_vector_precomputer import AnswerVectorPrecomputer
    from knowledge.document_store import build_document_store
    from knowledge.encoder import encoder_options
    from knowledge.generation.extractive import ExtractiveGenerator
    from knowledge.indexing import Indexer, SourceMeta
    from knowledge.retrieval import KnowledgeSearch, metadata_filters
    from knowledge.text_analysis import word_forms
    from tests.conftest import SAMPLES

    settings = Settings(data_dir=tmp_path / "data")
    store = build_document_store(settings)
    Indexer(settings, store).ingest([str(SAMPLES)], SourceMeta(tenant="acme", product="demo"))
    with sqlite3.connect(settings.data_dir / "answer_vectors.sqlite") as connection:
        [(stored,)] = connection.execute("SELECT count(*) FROM text_vectors").fetchall()
    assert stored > 500

    question = "How do I factory reset the router?"
    chunks = KnowledgeSearch(settings, store).search(question, filters=metadata_filters(tenant="acme"))
    encoder = CountingEncoder()
    generator = ExtractiveGenerator(semantic_weight=1.0, section_weight=2.0, encoder=encoder,
                                    vectors_path=settings.data_dir / "answer_vectors.sqlite")
    texts = [chunk.content or "" for chunk in chunks]
    assessment = generator.assess(question, texts, source_context(chunks))
    assert assessment.confidence > 1.0
    assert set(encoder.encoded) <= {question, *word_forms(question).values()}

    precomputer = AnswerVectorPrecomputer(vectors_path="x.sqlite", **encoder_options(settings))
    assert AnswerVectorPrecomputer.from_dict(precomputer.to_dict()).to_dict() == precomputer.to_dict()
