"""The training configuration: one validated dataclass, read from YAML and overridden by flags.

Usage::

    config = TrainingConfig.from_yaml(Path("lora.yaml"), overrides={"max_steps": 100})
    config = TrainingConfig(base_model_dir="data/models/smollm2-135m-instruct", dataset_dir="...", output_dir="...")
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError


@dataclass
class TrainingConfig:
    """How to fine-tune: LoRA by default, full fine-tuning with ``full``."""

    base_model_dir: str = field(default="", metadata={"help": "Hugging Face model directory of the base model"})
    dataset_dir: str = field(default="", metadata={"help": "dataset directory written by `supportbot train dataset`"})
    output_dir: str = field(default="", metadata={"help": "where the adapter (or full model) and checkpoints go"})
    full: bool = field(default=False, metadata={"help": "full fine-tuning instead of LoRA (small models only)"})
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank r"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha (the update is scaled by alpha/r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    target_modules: str = field(default="all-linear",
                                metadata={"help": "'all-linear' or a comma-separated list of module names"})
    max_seq_length: int = field(default=1024, metadata={"help": "tokens per sequence; longer examples are skipped"})
    packing: bool = field(default=False, metadata={"help": "concatenate short examples into max_seq_length rows"})
    per_device_batch_size: int = field(default=1, metadata={"help": "sequences per device per step"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.0, metadata={"help": "share of the steps spent warming up"})
    lr_scheduler: str = field(default="linear", metadata={"help": "transformers scheduler name"})
    num_epochs: float = field(default=1.0, metadata={"help": "passes over the training split"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many optimizer steps (-1: use num_epochs)"})
    gradient_checkpointing: bool = field(default=False,
                                         metadata={"help": "recompute activations: less memory, ~30% more compute"})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (GPU only)"})
    logging_steps: int = field(default=1, metadata={"help": "log loss every N optimizer steps"})
    save_steps: int = field(default=0, metadata={"help": "write a checkpoint every N steps (0: none)"})
    resume_from_checkpoint: str = field(
        default="", metadata={"help": "checkpoint directory to resume from, or 'latest' for the newest in output_dir"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation and data order"})
    threads: int = field(default=0, metadata={"help": "torch intra-op threads on CPU (0: torch's default)"})

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.lora_rank >= 1, f"lora_rank must be >= 1, not {self.lora_rank}"),
            (self.lora_alpha >= 1, f"lora_alpha must be >= 1, not {self.lora_alpha}"),
            (0 <= self.lora_dropout < 1, f"lora_dropout must be within [0, 1), not {self.lora_dropout}"),
            (bool(self.target_modules.strip()), "target_modules must name modules or be 'all-linear'"),
            (self.max_seq_length >= 16, f"max_seq_length must be >= 16, not {self.max_seq_length}"),
            (self.per_device_batch_size >= 1, "per_device_batch_size must be >= 1"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be >= 1"),
            (self.learning_rate > 0, f"learning_rate must be positive, not {self.learning_rate}"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0 <= self.warmup_ratio < 1, f"warmup_ratio must be within [0, 1), not {self.warmup_ratio}"),
            (self.num_epochs > 0 or self.max_steps > 0, "num_epochs must be positive unless max_steps is set"),
            (self.max_steps == -1 or self.max_steps >= 1, f"max_steps must be -1 or >= 1, not {self.max_steps}"),
            (self.logging_steps >= 1, "logging_steps must be >= 1"),
            (self.save_steps >= 0, "save_steps must be >= 0"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"training config: {message}")
        if self.bf16:
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("training config: bf16 needs a GPU (on a CPU bfloat16 training is slower than fp32)")

    @classmethod
    def from_yaml(cls, path: Path | None, overrides: dict[str, Any] | None = None) -> TrainingConfig:
        """The YAML file's mapping (if any), then ``overrides`` whose value is not None.

        :raises ConfigError: unreadable YAML, an unknown key, or a value that fails validation.
        """
        import yaml

        values: dict[str, Any] = {}
        if path is not None:
            try:
                loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as error:
                raise ConfigError(f"cannot read the training config {path}: {error}") from error
            if not isinstance(loaded, dict):
                raise ConfigError(f"the training config {path} must be a mapping of field: value")
            values.update(loaded)
        values.update({key: value for key, value in (overrides or {}).items() if value is not None})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training config field(s): {', '.join(unknown)}")
        try:
            return cls(**values)
        except TypeError as error:
            raise ConfigError(f"training config: {error}") from error

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def target_module_list(self) -> str | list[str]:
        """What peft's ``target_modules`` takes."""
        if self.target_modules.strip() == "all-linear":
            return "all-linear"
        return [name.strip() for name in self.target_modules.split(",") if name.strip()]
