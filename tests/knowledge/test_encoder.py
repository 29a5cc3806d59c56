from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import knowledge.onnx_encoder as onnx_encoder
from core.errors import ConfigError
from knowledge.encoder import SentenceEncoder, _batches

MANUALS = Path(__file__).resolve().parents[1] / "data" / "manuals-eval"


def _sample_texts() -> list[str]:
    """Manual sections (long, with Markdown and tables) and customer questions (short)."""
    sections = [json.loads(line) for line in (MANUALS / "corpus.jsonl").read_text().splitlines()]
    questions = [json.loads(line) for line in (MANUALS / "questions.jsonl").read_text().splitlines()]
    return ([f"{s['title']}\n{s['text']}" for s in sections[::4]]
            + [q["question"] for q in questions[::8]])


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"embedding\.runtime"):
        SentenceEncoder(runtime="tensorrt")


def test_missing_onnxruntime_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    encoder = SentenceEncoder(runtime="onnx-int8", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"onnxruntime.*embedding\.runtime to 'torch'"):
        encoder.warm_up()
    assert list(tmp_path.iterdir()) == []


def test_batches_are_length_sorted_and_within_the_token_budget() -> None:
    lengths = [5, 300, 40, 41, 7, 120, 39, 256, 3, 60]
    batches = list(_batches(lengths, max_texts=3, max_tokens=128))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths)
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 128


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return SentenceEncoder(runtime="torch").encode(_sample_texts())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.mark.slow
def test_onnx_fp32_gives_the_torch_vectors(torch_vectors: np.ndarray, cache_dir: Path) -> None:
    vectors = SentenceEncoder(runtime="onnx", cache_dir=cache_dir).encode(_sample_texts())
    assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
    assert np.min(np.sum(vectors * torch_vectors, axis=1)) > 0.9999


@pytest.mark.slow
def test_onnx_int8_stays_close_to_the_torch_vectors(torch_vectors: np.ndarray, cache_dir: Path) -> None:
    # Measured on 756 SQuAD passages, manual sections and questions: mean 0.9945, min 0.988.
    vectors = SentenceEncoder(runtime="onnx-int8", cache_dir=cache_dir).encode(_sample_texts())
    cosines = np.sum(vectors * torch_vectors, axis=1)
    assert np.mean(cosines) > 0.99
    assert np.min(cosines) > 0.98
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_torch_bf16_stays_within_rounding_of_the_fp32_vectors(torch_vectors: np.ndarray) -> None:
    # Measured on 256 SQuAD passages and manual sections: cosine mean 0.99999, min 0.99998.
    encoder = SentenceEncoder(runtime="torch-bf16")
    vectors = encoder.encode(_sample_texts())
    assert encoder.resolved_runtime == "torch-bf16" and vectors.dtype == np.float32
    cosines = np.sum(vectors * torch_vectors, axis=1)
    assert np.min(cosines) > 0.9995
    assert not np.array_equal(vectors, torch_vectors)  # bf16 products really ran: the vectors moved, slightly
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(("cpuinfo", "documents"), [
    ("flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile", "torch-bf16"),
    ("flags\t\t: fpu avx2 avx512f avx512_bf16", "torch-bf16"),
    ("flags\t\t: fpu avx2 avx512f avx512bw", "onnx"),
    (None, "onnx"),
])
def test_auto_embeds_documents_in_bf16_only_where_the_cpu_has_bf16_units(tmp_path: Path, cpuinfo: str | None,
                                                                          documents: str) -> None:
    from knowledge.encoder import resolve_runtime

    fake = tmp_path / "cpuinfo"  # missing when None: not Linux
    if cpuinfo is not None:
        fake.write_text(cpuinfo)
    assert resolve_runtime("auto", fake, purpose="documents") == documents
    assert resolve_runtime("auto", fake, purpose="queries") == "onnx"  # latency: always the ONNX export
    assert resolve_runtime("onnx-int8", fake, purpose="documents") == "onnx-int8"


@pytest.mark.slow
def test_export_is_cached_and_reused(monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    first = SentenceEncoder(runtime="onnx-int8", cache_dir=cache_dir)
    vector = first.encode(["How do I descale the coffee machine?"])
    exports = [path for path in cache_dir.iterdir() if path.name.startswith("sentence-encoder-int8-")]
    assert len(exports) == 1 and (exports[0] / onnx_encoder.MODEL_FILE).is_file()
    assert not [path for path in cache_dir.iterdir() if path.name.startswith(".")]  # no staging left behind

    def no_export(*args: object) -> Path:
        raise AssertionError("exported again instead of using the cache")

    monkeypatch.setattr(onnx_encoder, "_export", no_export)
    second = SentenceEncoder(runtime="onnx-int8", cache_dir=cache_dir)
    second.warm_up()
    assert second.dimension == 384
    np.testing.assert_allclose(second.encode(["How do I descale the coffee machine?"]), vector, atol=1e-6)


@pytest.mark.slow
def test_encode_keeps_input_order_and_handles_empty_input(torch_vectors: np.ndarray) -> None:
    texts = _sample_texts()
    encoder = SentenceEncoder(runtime="torch", batch_size=4)
    reversed_vectors = encoder.encode(texts[::-1])
    np.testing.assert_allclose(reversed_vectors[::-1], torch_vectors, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_pipelines_take_runtime_and_export_cache_from_the_settings(tmp_path: Path) -> None:
    from core.settings import EmbeddingSettings, Settings
    from knowledge.document_store import PersistentDocumentStore
    from knowledge.indexing import build_indexing_pipeline
    from knowledge.retrieval import build_retrieval_pipeline

    settings = Settings(data_dir=tmp_path / "data", embedding=EmbeddingSettings(
        runtime="onnx-int8", export_cache_dir=tmp_path / "exports", threads=1))
    settings.retrieval.rerank = True
    store = PersistentDocumentStore(path=None)
    components = [build_indexing_pipeline(settings, store).get_component("embedder"),
                  *(build_retrieval_pipeline(settings, store).get_component(name)
                    for name in ("query_embedder", "reranker"))]
    for component in components:
        init = component.to_dict()["init_parameters"]
        assert (init["runtime"], init["cache_dir"], init["threads"]) == ("onnx-int8", str(tmp_path / "exports"), 1)
        assert type(component).from_dict(component.to_dict()).to_dict() == component.to_dict()


def test_exports_default_to_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from core.settings import Settings
    from knowledge.encoder import export_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert export_cache_dir(Settings(data_dir=tmp_path / "a")) == tmp_path / "xdg" / "supportbot"
    assert export_cache_dir(Settings(data_dir=tmp_path / "b")) == export_cache_dir(Settings(data_dir=tmp_path / "a"))
