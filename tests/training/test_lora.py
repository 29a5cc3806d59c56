"""LoRA training of the real SmolLM2-135M on the CPU, from a logged conversation log: the base
weights stay as they were, the adapter weights move, the loss on the training examples falls,
and the saved adapter loads back (peft and the local generator).

One training run (8 steps of one ~80-token example) is shared by the module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from core.db.engine import build_engine, open_session
from core.db.migrate import upgrade
from core.errors import ConfigError, InvalidInputError
from core.settings import Settings
from tests.torch_threads import one_torch_thread
from training.config import TrainingConfig
from training.dataset import DatasetConfig, build_dataset, load_split, write_dataset
from training.lora import IGNORE_INDEX, TrainingResult, mean_loss, pack_rows, tokenize_example, tokenize_rows, train

from .conftest import TENANT, build_conversation_log, render

pytestmark = pytest.mark.slow


@dataclass
class Trained:
    base_dir: Path
    dataset_dir: Path
    result: TrainingResult
    base_checksum_before: str


def base_checksum(named_tensors: dict[str, Any]) -> str:
    """sha256 over the base model's tensors, keyed by their name without peft's wrapping."""
    digest = hashlib.sha256()
    for name in sorted(named_tensors):
        digest.update(name.encode())
        digest.update(named_tensors[name].detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def base_tensors(model: Any) -> dict[str, Any]:
    tensors = {}
    for name, tensor in model.state_dict().items():
        if "lora_" in name:
            continue
        tensors[name.removeprefix("base_model.model.").replace(".base_layer.", ".")] = tensor
    return tensors


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def base_dir(smollm2_dir: Path) -> Path:
    return smollm2_dir


@pytest.fixture(scope="module")
def trained(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("lora")
    engine = build_engine(Settings(data_dir=root / "data"))
    upgrade(engine)
    with open_session(engine) as session:
        build_conversation_log(session)
        built = build_dataset(session, config=DatasetConfig(tenant_id=TENANT, validation_fraction=0.0,
                                                            test_fraction=0.2), render=render)
    engine.dispose()
    dataset_dir = write_dataset(built, root / "datasets")
    checksum = base_checksum(base_tensors(AutoModelForCausalLM.from_pretrained(str(base_dir))))
    config = TrainingConfig(base_model_dir=str(base_dir), dataset_dir=str(dataset_dir), output_dir=str(root / "out"),
                            lora_rank=8, lora_alpha=16, lora_dropout=0.0, max_seq_length=160,
                            per_device_batch_size=1, max_steps=8, learning_rate=1e-3, save_steps=4, threads=1)
    result = train(config)
    yield Trained(base_dir=base_dir, dataset_dir=dataset_dir, result=result, base_checksum_before=checksum)


def test_output_directory_has_adapter_manifest_and_metrics(trained: Trained) -> None:
    out = trained.result.output_dir
    for name in ("adapter_config.json", "adapter_model.safetensors", "manifest.json", "metrics.jsonl"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    dataset_manifest = json.loads((trained.dataset_dir / "manifest.json").read_text())
    assert manifest["dataset_sha256"] == dataset_manifest["content_sha256"]
    assert manifest["base_model"] == str(trained.base_dir.resolve()) and manifest["kind"] == "lora"
    assert manifest["created_at"] and manifest["metrics"]["steps"] == 8
    assert manifest["metrics"]["tokens_per_second"] > 0
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if "loss" in s] == list(range(1, 9))
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 8
    print("\ntraining metrics:", json.dumps(manifest["metrics"]))


def test_base_weights_are_unchanged(trained: Trained) -> None:
    model = trained.result.model
    frozen = [name for name, p in model.named_parameters() if "lora_" not in name and p.requires_grad]
    assert frozen == []
    assert base_checksum(base_tensors(model)) == trained.base_checksum_before


def test_adapter_weights_moved_from_their_initialisation(trained: Trained) -> None:
    from safetensors.torch import load_file

    weights = load_file(str(trained.result.output_dir / "adapter_model.safetensors"))
    lora_b = {name: tensor for name, tensor in weights.items() if "lora_B" in name}
    assert lora_b and len(lora_b) == len(weights) // 2
    # peft initialises every B matrix to zeros: each one that is non-zero was trained.
    assert all(float(tensor.abs().sum()) > 0 for tensor in lora_b.values())


def test_loss_on_the_training_examples_fell(trained: Trained) -> None:
    """The saved adapter, loaded back onto a fresh base, against the same base without it."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tokenizer = trained.result.tokenizer
    rows = tokenize_rows(tokenizer, load_split(trained.dataset_dir, "train"), 160).rows
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(trained.base_dir)),
                                      str(trained.result.output_dir))
    after = mean_loss(model, rows, tokenizer.pad_token_id)
    with model.disable_adapter():
        before = mean_loss(model, rows, tokenizer.pad_token_id)
    print(f"\nmean answer-token loss on the training examples: {before:.4f} -> {after:.4f}")
    assert after < before * 0.8
    metrics = trained.result.manifest["metrics"]
    assert metrics["last_loss"] < metrics["first_loss"]


def test_resume_from_the_latest_checkpoint(trained: Trained, tmp_path: Path) -> None:
    config = TrainingConfig(**{**trained.result.manifest["config"], "resume_from_checkpoint": "latest",
                               "max_steps": 9, "save_steps": 0})
    result = train(config)
    assert result.manifest["metrics"]["steps"] == 9
    metrics = result.manifest["metrics"]
    assert metrics["input_tokens_seen"] < 200 < metrics["input_tokens_seen_total"]  # only the ninth step ran


def test_local_generator_loads_the_adapter(trained: Trained) -> None:
    from knowledge.generation.local import LocalGenerator

    generator = LocalGenerator(model_dir=str(trained.base_dir), cache_dir=trained.base_dir, threads=1)
    assert generator.load_adapter(trained.result.output_dir) == trained.result.output_dir.name


def test_labels_cover_only_the_answer(trained: Trained) -> None:
    tokenizer = trained.result.tokenizer
    messages = [{"role": "system", "content": "Cite."}, {"role": "user", "content": "Q?"},
                {"role": "assistant", "content": "The answer [1]."}]
    row = tokenize_example(tokenizer, messages, 128)
    assert row is not None
    answer = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(answer).startswith("The answer [1].")
    assert row["labels"][0] == IGNORE_INDEX
    assert tokenize_example(tokenizer, messages, 8) is None  # too long: skipped, never cut
    packed = pack_rows([row, row, row], 2 * len(row["input_ids"]))
    assert [len(r["input_ids"]) for r in packed] == [2 * len(row["input_ids"]), len(row["input_ids"])]


def test_examples_longer_than_the_context_are_a_clear_error(trained: Trained, tmp_path: Path) -> None:
    config = TrainingConfig(base_model_dir=str(trained.base_dir), dataset_dir=str(trained.dataset_dir),
                            output_dir=str(tmp_path / "out"), max_seq_length=16, max_steps=1)
    with pytest.raises(InvalidInputError, match="max_seq_length=16"):
        train(config)


def test_missing_base_model_is_a_config_error(trained: Trained, tmp_path: Path) -> None:
    config = TrainingConfig(base_model_dir=str(tmp_path), dataset_dir=str(trained.dataset_dir),
                            output_dir=str(tmp_path / "out"), max_steps=1)
    with pytest.raises(ConfigError, match="base_model_dir"):
        train(config)


def test_cli_renderer_uses_the_answer_prompt_with_the_stored_chunks(base_dir: Path) -> None:
    """The renderer `supportbot train dataset` uses: the answer prompt template, sources looked up by
    id in the tenant's store, in the order the turn was shown them; None when one is gone."""
    from haystack import Document

    from jobs.training_inputs import answer_prompt_renderer
    from knowledge.document_store import build_document_store

    settings = Settings(data_dir=base_dir.parents[1])  # its models/ holds the module's SmolLM2 cache
    store = build_document_store(settings)
    store.write_documents([
        Document(id="c1", content="Hold the reset button for 10 seconds.", meta={"tenant": TENANT, "title": "Router",
                                                                                 "heading_path": ["Router", "Reset"]}),
        Document(id="c2", content="The password is on the label.", meta={"tenant": TENANT, "title": "Wi-Fi"}),
        Document(id="c3", content="Another tenant's chunk.", meta={"tenant": "other", "title": "Other"})])
    store.save()  # type: ignore[attr-defined]
    render_prompt = answer_prompt_renderer(settings, TENANT)
    prompt = render_prompt("How do I reset it?", ["c2", "c1"])
    assert prompt is not None and prompt.sources == 2
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    user = prompt.messages[-1]["content"]
    assert user.index("password is on the label") < user.index("Hold the reset button") and "How do I reset it?" in user
    assert render_prompt("Q?", ["c1", "c3"]) is None  # another tenant's chunk is not a source
    assert render_prompt("Q?", ["c1", "deleted"]) is None


def test_gate_refuses_a_corrupted_adapter(trained: Trained, tmp_path: Path) -> None:
    """Real generation on the held-out split and part of the golden set: the trained adapter with its
    B matrices replaced by noise answers worse than (or at best as badly as) the base model, and is
    not promoted."""
    import shutil

    from safetensors.torch import load_file, save_file

    from core.settings import GeneratorSettings, LocalGeneratorSettings
    from jobs.training_inputs import citation_judge, local_generate
    from training.evaluate import GOLDEN, HELD_OUT, GateConfig, run_gate
    from training.golden_set import load_golden_set

    corrupted = tmp_path / "corrupted"
    shutil.copytree(trained.result.output_dir, corrupted, ignore=shutil.ignore_patterns("checkpoints"))
    weights = load_file(str(corrupted / "adapter_model.safetensors"))
    generator = torch.Generator().manual_seed(0)
    save_file({name: torch.randn(t.shape, generator=generator) * 5 if "lora_B" in name else t
               for name, t in weights.items()}, str(corrupted / "adapter_model.safetensors"))
    settings = Settings(data_dir=tmp_path / "data", generator=GeneratorSettings(
        max_new_tokens=24, local=LocalGeneratorSettings(threads=1)))
    examples = load_split(trained.dataset_dir, "test")
    assert examples
    golden = [e for e in load_golden_set() if e["id"] in ("g01", "g13", "a01")]  # a few, to keep the test short
    report = run_gate({HELD_OUT: examples, GOLDEN: golden},
                      {"candidate": local_generate(settings, trained.base_dir, corrupted),
                       "base": local_generate(settings, trained.base_dir, None)},
                      judge=citation_judge(settings), gate=GateConfig(min_examples=1))
    decision = report.decision
    print("\ncorrupted vs base:", json.dumps(report.summary()["sets"]), decision.reasons)
    assert not decision.promote and not any("no decision" in reason for reason in decision.reasons)


def test_full_fine_tuning_writes_a_whole_model(trained: Trained, tmp_path: Path) -> None:
    config = TrainingConfig(base_model_dir=str(trained.base_dir), dataset_dir=str(trained.dataset_dir),
                            output_dir=str(tmp_path / "full"), full=True, max_seq_length=160, max_steps=1,
                            learning_rate=1e-5, threads=1)
    result = train(config)
    assert result.manifest["kind"] == "full"
    assert result.manifest["metrics"]["trainable_params"] == sum(p.numel() for p in result.model.parameters())
    assert (tmp_path / "full" / "model.safetensors").is_file() and (tmp_path / "full" / "tokenizer.json").is_file()
    assert not (tmp_path / "full" / "adapter_config.json").exists()
