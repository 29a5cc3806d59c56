"""LoRA (or full) fine-tuning of a causal LM on a dataset from :mod:`training.dataset`, with the
transformers ``Trainer`` and peft.

The loss covers the assistant's answer only: prompt tokens (system, sources, question) are
labelled -100. Examples longer than ``max_seq_length`` are skipped and counted, never cut (a cut
answer teaches the model to stop mid-sentence; a cut prompt loses the sources it cites).

The output directory holds ``adapter_config.json`` + ``adapter_model.safetensors`` (or the full
model with ``--full``), ``metrics.jsonl`` (one line per logged step: loss, learning rate, tokens
seen) and ``manifest.json`` (base model, dataset hash, metrics, created_at); checkpoints go to
``<output>/checkpoints`` and ``resume_from_checkpoint: latest`` continues from the newest.

One process or many: the Trainer runs on whatever ``accelerate`` set up, so the same code trains
SmolLM2 on a CPU, a large model on one GPU, and data-parallel or FSDP on several::

    # one machine, 8 GPUs, data parallel
    accelerate launch --num_processes 8 -m training.lora --config lora.yaml --bf16
    # a model that does not fit one GPU: shard it with FSDP (answer the FSDP questions of
    # `accelerate config`, or pass --use_fsdp --fsdp_sharding_strategy FULL_SHARD
    #  --fsdp_auto_wrap_policy TRANSFORMER_BASED_WRAP)
    accelerate launch --config_file fsdp.yaml -m training.lora --config lora.yaml --bf16
    # several machines: the same, with --num_machines N --machine_rank R --main_process_ip HOST

Only the main process writes the adapter, the manifest and ``metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigError, InvalidInputError
from training.config import TrainingConfig
from training.dataset import load_split, read_manifest

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
METRICS_FILE = "metrics.jsonl"
MANIFEST = "manifest.json"


@dataclass
class TokenizedRows:
    rows: list[dict[str, list[int]]]
    skipped_too_long: int
    trained_tokens: int
    """tokens with a label (the answers)"""


@dataclass
class TrainingResult:
    output_dir: Path
    manifest: dict[str, Any]
    model: Any
    tokenizer: Any


def tokenize_example(tokenizer: Any, messages: list[dict[str, str]], max_seq_length: int
                     ) -> dict[str, list[int]] | None:
    """Input ids and labels for one example (labels -100 except on the assistant's answer), or None
    when it does not fit ``max_seq_length``.

    :raises InvalidInputError: when the last message is not the assistant's, or the chat template
        does not render the prompt as a prefix of the whole conversation.
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise InvalidInputError("a training example must end with the assistant's message")
    prompt = _ids(tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True))
    full = _ids(tokenizer.apply_chat_template(messages, tokenize=True))
    if full[: len(prompt)] != prompt:
        raise InvalidInputError("the chat template does not render the prompt as a prefix of the conversation; "
                                "the answer tokens cannot be located")
    if len(full) > max_seq_length:
        return None
    return {"input_ids": full, "labels": [IGNORE_INDEX] * len(prompt) + full[len(prompt):]}


def _ids(rendered: Any) -> list[int]:
    """``apply_chat_template(tokenize=True)`` returns a list or, in newer transformers, a mapping."""
    ids = rendered["input_ids"] if not isinstance(rendered, list) else rendered
    return [int(i) for i in ids]


def tokenize_rows(tokenizer: Any, examples: list[dict[str, Any]], max_seq_length: int, *, packing: bool = False
                  ) -> TokenizedRows:
    rows, skipped = [], 0
    for example in examples:
        row = tokenize_example(tokenizer, example["messages"], max_seq_length)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    if packing:
        rows = pack_rows(rows, max_seq_length)
    trained = sum(sum(1 for label in row["labels"] if label != IGNORE_INDEX) for row in rows)
    return TokenizedRows(rows=rows, skipped_too_long=skipped, trained_tokens=trained)


def pack_rows(rows: list[dict[str, list[int]]], max_seq_length: int) -> list[dict[str, list[int]]]:
    """Greedy packing of whole examples into rows of at most ``max_seq_length`` tokens. Attention is
    not masked between the packed examples (as in TRL's classic packing); each keeps its labels."""
    packed: list[dict[str, list[int]]] = []
    current: dict[str, list[int]] = {"input_ids": [], "labels": []}
    for row in rows:
        if current["input_ids"] and len(current["input_ids"]) + len(row["input_ids"]) > max_seq_length:
            packed.append(current)
            current = {"input_ids": [], "labels": []}
        current["input_ids"] = current["input_ids"] + row["input_ids"]
        current["labels"] = current["labels"] + row["labels"]
    if current["input_ids"]:
        packed.append(current)
    return packed


class PadCollator:
    """Right-pads a batch to its longest row; padding has attention 0 and label -100."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(row["input_ids"]) for row in rows)
        ids, labels, mask = [], [], []
        for row in rows:
            pad = width - len(row["input_ids"])
            ids.append(row["input_ids"] + [self.pad_token_id] * pad)
            labels.append(row["labels"] + [IGNORE_INDEX] * pad)
            mask.append([1] * len(row["input_ids"]) + [0] * pad)
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def mean_loss(model: Any, rows: list[dict[str, list[int]]], pad_token_id: int, batch_size: int = 2) -> float:
    """Token-weighted mean loss over the answer tokens of ``rows`` (no gradients)."""
    import torch

    collate = PadCollator(pad_token_id)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = collate(rows[start:start + batch_size])
            batch = {key: value.to(model.device) for key, value in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            shifted = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), shifted.flatten(),
                                                       ignore_index=IGNORE_INDEX, reduction="sum")
            total += float(losses)
            count += int((shifted != IGNORE_INDEX).sum())
    model.train(was_training)
    return total / max(count, 1)


def _metrics_callback(path: Path) -> Any:
    from transformers import TrainerCallback

    class MetricsFile(TrainerCallback):
        """Appends every log of the main process to ``metrics.jsonl`` and to the log."""

        def __init__(self) -> None:
            self.started = time.perf_counter()
            self.tokens_at_start: int | None = None  # a resumed run starts from the checkpoint's count

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.tokens_at_start is None:
                self.tokens_at_start = int(state.num_input_tokens_seen)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            record = {"step": state.global_step, "elapsed_s": round(time.perf_counter() - self.started, 3), **logs}
            with path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record, default=float) + "\n")
            if "loss" in logs:
                logger.info("step %d/%d loss %.4f", state.global_step, state.max_steps, logs["loss"])

    return MetricsFile()


def load_model(config: TrainingConfig) -> tuple[Any, Any]:
    """The base model (fp32, or bf16 weights when training in bf16) and its tokenizer.

    :raises ConfigError: when ``base_model_dir`` is not a model directory.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = Path(config.base_model_dir)
    if not (base / "config.json").is_file():
        raise ConfigError(f"base_model_dir {config.base_model_dir!r} is not a Hugging Face model directory")
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _wrap_lora(model: Any, config: TrainingConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_module_list(), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def _base_fingerprint(base_dir: Path) -> str:
    """sha256 of the base model's config.json: enough to tell base models apart when serving."""
    return hashlib.sha256((base_dir / "config.json").read_bytes()).hexdigest()


def train(config: TrainingConfig) -> TrainingResult:
    """Fine-tune as ``config`` says and write the output directory.

    :raises ConfigError: when a directory in the config is missing or wrong.
    :raises InvalidInputError: when the dataset has no training example that fits ``max_seq_length``.
    """
    import torch
    from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    if not config.dataset_dir or not config.output_dir:
        raise ConfigError("training config: dataset_dir and output_dir are required")
    if config.threads:
        torch.set_num_threads(config.threads)
    dataset_manifest = read_manifest(Path(config.dataset_dir))
    set_seed(config.seed)
    model, tokenizer = load_model(config)
    train_data = tokenize_rows(tokenizer, load_split(Path(config.dataset_dir), "train"), config.max_seq_length,
                               packing=config.packing)
    if not train_data.rows:
        raise InvalidInputError(f"no training example fits max_seq_length={config.max_seq_length} "
                                f"({train_data.skipped_too_long} too long); raise it or shorten the prompts")
    validation = tokenize_rows(tokenizer, load_split(Path(config.dataset_dir), "validation"), config.max_seq_length)
    if not config.full:
        model = _wrap_lora(model, config)
    if config.gradient_checkpointing and not config.full:
        model.enable_input_require_grads()  # checkpointed LoRA layers need a grad-requiring input

    output = Path(config.output_dir)
    checkpoints = output / "checkpoints"
    output.mkdir(parents=True, exist_ok=True)
    resume: str | None = config.resume_from_checkpoint or None
    if resume == "latest":
        resume = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
        if resume is None:
            raise ConfigError(f"resume_from_checkpoint: latest, but there is no checkpoint under {checkpoints}")
    elif resume is not None and not Path(resume).is_dir():
        raise ConfigError(f"resume_from_checkpoint: {resume} is not a checkpoint directory")
    arguments = TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, warmup_steps=float(config.warmup_ratio), lr_scheduler_type=config.lr_scheduler,
        num_train_epochs=config.num_epochs, max_steps=config.max_steps, logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_steps else "no", save_steps=config.save_steps or 500,
        bf16=config.bf16, gradient_checkpointing=config.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        seed=config.seed, report_to="none", remove_unused_columns=False, dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding", disable_tqdm=True, logging_first_step=True,
        use_cpu=not torch.cuda.is_available())
    metrics_file = _metrics_callback(output / METRICS_FILE)
    trainer = Trainer(model=model, args=arguments, train_dataset=train_data.rows,
                      eval_dataset=validation.rows or None, data_collator=PadCollator(tokenizer.pad_token_id),
                      callbacks=[metrics_file])
    trainer.remove_callback(PrinterCallback)  # our callback logs each step once, as a log record
    eval_before = trainer.evaluate()["eval_loss"] if validation.rows else None
    started = time.perf_counter()
    outcome = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    eval_after = trainer.evaluate()["eval_loss"] if validation.rows else None
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    tokens = int(trainer.state.num_input_tokens_seen) - (metrics_file.tokens_at_start or 0)
    metrics = {
        "steps": trainer.state.global_step, "train_loss": float(outcome.training_loss),
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "validation_loss_before": eval_before, "validation_loss_after": eval_after,
        "train_examples": len(train_data.rows), "skipped_too_long": train_data.skipped_too_long,
        "input_tokens_seen": tokens, "input_tokens_seen_total": int(trainer.state.num_input_tokens_seen),
        "train_seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    manifest = {
        "kind": "full" if config.full else "lora",
        "base_model": str(Path(config.base_model_dir).resolve()),
        "base_model_config_sha256": _base_fingerprint(Path(config.base_model_dir)),
        "dataset": str(Path(config.dataset_dir).resolve()),
        "dataset_version": dataset_manifest.get("version"),
        "dataset_sha256": dataset_manifest["content_sha256"],
        "metrics": metrics, "config": config.as_dict(), "created_at": datetime.now(UTC).isoformat(),
    }
    trainer.save_model(str(output))
    if trainer.is_world_process_zero():
        if config.full:
            tokenizer.save_pretrained(str(output))
        (output / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return TrainingResult(output_dir=output, manifest=manifest, model=model, tokenizer=tokenizer)


def build_parser() -> argparse.ArgumentParser:
    """Flags for every :class:`TrainingConfig` field (help from the field metadata), plus ``--config``."""
    parser = argparse.ArgumentParser(prog="python -m training.lora", description="LoRA / full fine-tuning")
    parser.add_argument("--config", type=Path, default=None, help="YAML file of TrainingConfig fields")
    for item in dataclasses.fields(TrainingConfig):
        flag = "--" + item.name.replace("_", "-")
        help_text = str(item.metadata.get("help", "")).replace("%", "%%")  # argparse formats help with %
        if item.type in ("bool", bool):
            parser.add_argument(flag, dest=item.name, action="store_true", default=None, help=help_text)
        else:
            kind = {"int": int, "float": float}.get(str(item.type), str)
            parser.add_argument(flag, dest=item.name, type=kind, default=None, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``accelerate launch -m training.lora``: flags override the YAML config."""
    args = vars(build_parser().parse_args(argv))
    config = TrainingConfig.from_yaml(args.pop("config"), overrides=args)
    result = train(config)
    print(json.dumps(result.manifest["metrics"]))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
