"""The sentence encoder's transformer as an ONNX Runtime session, exported once from the shipped model.

The export is a fixed pipeline: the TorchScript ONNX exporter (eager attention, so that the
onnxruntime.transformers optimizer recognises the attention pattern), then that optimizer's BERT
fusions (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu), then, for
``onnx-int8``, dynamic int8 quantisation of the MatMul weights. The result is cached under
``<cache_dir>/sentence-encoder-<variant>-<fingerprint>/model.onnx``; the fingerprint covers the
model's config and weights and :data:`EXPORT_FORMAT`, so a different model or a changed pipeline
gets a new file instead of a stale one.

Why these quantisation choices (measured on all-MiniLM-L6-v2, AVX2 without VNNI, see
``benchmarks/embedding_benchmark.py``): only MatMul nodes are quantised; the fused Attention nodes
stay fp32, which keeps the cosine to the fp32 embeddings at ~0.995 for the same speed as quantising
them too (~0.993). ``reduce_range`` (7-bit weights) avoids the int16 saturation of the u8×s8
multiply-add that AVX2 kernels use; per-channel scales recover the precision it costs. Activations
are quantised with one scale per batch, so an int8 vector also depends on the texts batched with
it: a text embedded alone and in a batch gives vectors ~0.995 apart (cosine), each ~0.995 to the
fp32 vector. The retrieval evaluations (queries alone, documents batched) include that effect.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.errors import ConfigError

logger = logging.getLogger(__name__)

OnnxVariant = Literal["fp32", "int8"]

EXPORT_FORMAT = 1
"""Bump when the export pipeline changes, so that caches written by the old one are not reused."""

MODEL_FILE = "model.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# The export is checked against torch on a padded batch; below this cosine it is refused.
_MIN_EXPORT_COSINE: dict[OnnxVariant, float] = {"fp32": 0.9999, "int8": 0.98}
_CHECK_TEXTS = ("How do I reset the router to factory settings?",
                "Descale the machine every month: fill the tank with water and descaler, then run the "
                "descaling programme from the settings menu until the light stops blinking.")


def import_onnxruntime(runtime: str) -> Any:
    """:raises ConfigError: when onnxruntime or onnx is not installed."""
    try:
        import onnx  # noqa: F401  (needed by the export and the quantiser)
        import onnxruntime
    except ImportError as error:
        raise ConfigError(f"embedding.runtime {runtime!r} needs onnxruntime and onnx "
                          f"(pip install onnxruntime onnx), or set embedding.runtime to 'torch': {error}") from error
    return onnxruntime


def model_fingerprint(model_path: Path) -> str:
    """A short hash of the model's config and weights and of the export pipeline's version."""
    digest = hashlib.sha256(f"format={EXPORT_FORMAT}".encode())
    weights = sorted(p for p in model_path.iterdir() if p.suffix in {".safetensors", ".bin"} or p.name == "config.json")
    for path in weights:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def cached_model_path(cache_dir: Path, model_path: Path, variant: OnnxVariant) -> Path:
    """Where the exported model for ``model_path`` lives (or will live) under ``cache_dir``."""
    return cache_dir / f"sentence-encoder-{variant}-{model_fingerprint(model_path)}" / MODEL_FILE


def load_onnx_model(model_path: Path, variant: OnnxVariant, cache_dir: Path | None) -> bytes:
    """The serialized ONNX model: read from the cache, or exported (and cached) on first use.

    :param model_path: the Hugging Face model directory (config, weights, tokenizer).
    :param variant: ``"fp32"`` or ``"int8"`` (dynamically quantised MatMuls).
    :param cache_dir: where exports are kept; ``None`` exports afresh each time and keeps nothing.
    :returns: the model's bytes, ready for ``onnxruntime.InferenceSession``.
    """
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="sentence-encoder-") as staging:
            return _export(model_path, variant, Path(staging)).read_bytes()
    target = cached_model_path(cache_dir, model_path, variant)
    if target.is_file():
        return target.read_bytes()
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    staging_dir = Path(tempfile.mkdtemp(prefix=f".{target.parent.name}-", dir=target.parent.parent))
    try:
        data = _export(model_path, variant, staging_dir).read_bytes()
        # Renaming the whole directory is atomic: readers never see a half-written model, and when
        # two processes race the loser's rename fails and its copy is discarded.
        os.replace(staging_dir, target.parent)
        logger.info("cached the %s ONNX export of %s in %s", variant, model_path, target.parent)
    except OSError as error:
        if target.is_file():
            logger.info("ONNX export %s was written by another process", target.parent)
        else:
            # The exported bytes are still good; the next process simply exports again.
            logger.warning("could not cache the ONNX export in %s: %s", target.parent, error)
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
    return data


def _export(model_path: Path, variant: OnnxVariant, workdir: Path) -> Path:
    """Export, fuse and (for int8) quantise into ``workdir``; leaves only ``workdir/model.onnx``."""
    import onnx
    import torch
    from onnxruntime.quantization import quantize_dynamic
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager")
    model.eval()
    exported, fused, final = workdir / "exported.onnx", workdir / "fused.onnx", workdir / MODEL_FILE
    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0  # a padded row, so that masking cannot be traced away as a constant
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        # The tracer warns about Python booleans in transformers' mask code; the check below
        # verifies on a padded batch of another shape that the traced graph is correct.
        warnings.simplefilter("ignore")
        torch.onnx.export(_last_hidden_state_module(model), (ids, mask, torch.zeros_like(ids)), str(exported),
                          input_names=list(INPUT_NAMES), output_names=["last_hidden_state"],
                          dynamic_axes={name: axes for name in (*INPUT_NAMES, "last_hidden_state")},
                          opset_version=17, dynamo=False)
    config = model.config
    optimized = optimizer.optimize_model(str(exported), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size, opt_level=0)
    optimized.save_model_to_file(str(fused))
    exported.unlink()
    if variant == "int8":
        quantize_dynamic(fused, final, op_types_to_quantize=["MatMul"], per_channel=True, reduce_range=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        fused.unlink()
    else:
        fused.rename(final)
    _check_export(model, final, variant, model_path)
    return final


def _last_hidden_state_module(model: Any) -> Any:
    """``model(...).last_hidden_state`` as a module with positional inputs, as the exporter wants."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    # eval() on the wrapper too: the exporter restores the wrapper's mode afterwards, recursively,
    # and a new module starts in training mode (dropout on).
    return LastHiddenState().eval()


def _check_export(model: Any, onnx_path: Path, variant: OnnxVariant, model_path: Path) -> None:
    """Refuse an export whose mean-pooled embeddings drift from torch's on a padded batch."""
    import onnxruntime
    import torch
    from transformers import AutoTokenizer

    batch = AutoTokenizer.from_pretrained(str(model_path))(list(_CHECK_TEXTS), padding=True, return_tensors="np")
    feed = {name: batch[name].astype(np.int64) for name in INPUT_NAMES}
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = model(**{name: torch.from_numpy(value) for name, value in feed.items()}).last_hidden_state.numpy()
    got = session.run(None, feed)[0]
    cosine = float(np.min(np.sum(mean_pool(got, feed["attention_mask"]) * mean_pool(expected, feed["attention_mask"]),
                                 axis=1)))
    if cosine < _MIN_EXPORT_COSINE[variant]:
        raise ConfigError(f"the {variant} ONNX export of {model_path} does not match the torch model "
                          f"(cosine {cosine:.4f}); set embedding.runtime to 'torch'")


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean over the unmasked tokens, L2-normalised: ``(batch, seq, dim)`` → float32 ``(batch, dim)``."""
    mask = attention_mask[..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return (pooled / norms).astype(np.float32)


class OnnxTransformer:
    """An ONNX Runtime session that maps padded token ids to the last hidden state.

    Usage::

        transformer = OnnxTransformer.load(model_path, "int8", cache_dir=data_dir / "models")
        hidden = transformer(input_ids, attention_mask)  # (batch, seq, dim) float32
    """

    def __init__(self, session: Any) -> None:
        self._session = session

    @classmethod
    def load(cls, model_path: Path, variant: OnnxVariant, *, cache_dir: Path | None, threads: int = 0,
             runtime_name: str = "onnx") -> OnnxTransformer:
        """:param threads: intra-op threads; 0 means one per CPU available to this process.
        :raises ConfigError: when onnxruntime is missing or the export does not match torch."""
        onnxruntime = import_onnxruntime(runtime_name)
        data = load_onnx_model(model_path, variant, cache_dir)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning: a spinning pool burns the cores that the other
        # threads of the process (requests, the generator) and other processes need; measured on
        # 2 shared cores, encoding ran 1.7x faster without spinning (see README, "Embeddings").
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return cls(onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"]))

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)}
        return np.asarray(self._session.run(None, feed)[0])


def hidden_size(model_path: Path) -> int:
    """The embedding dimension, from the model's ``config.json``."""
    return int(json.loads((model_path / "config.json").read_text())["hidden_size"])
