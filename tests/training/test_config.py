"""TrainingConfig: validation names the field; YAML plus overrides; the CLI flags carry the help."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from training.config import TrainingConfig
from training.lora import build_parser


@pytest.mark.parametrize("values, field", [
    ({"lora_rank": 0}, "lora_rank"), ({"lora_dropout": 1.0}, "lora_dropout"), ({"learning_rate": 0}, "learning_rate"),
    ({"max_seq_length": 4}, "max_seq_length"), ({"max_steps": 0}, "max_steps"), ({"target_modules": " "}, "target_modules"),
    ({"warmup_ratio": 1.5}, "warmup_ratio"), ({"bf16": True}, "bf16"),
])
def test_bad_values_name_the_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainingConfig(**values)  # type: ignore[arg-type]


def test_yaml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "lora.yaml"
    path.write_text("lora_rank: 4\nlearning_rate: 0.001\ntarget_modules: q_proj, v_proj\n")
    config = TrainingConfig.from_yaml(path, overrides={"lora_rank": 8, "max_steps": None})
    assert (config.lora_rank, config.learning_rate, config.max_steps) == (8, 0.001, -1)
    assert config.target_module_list() == ["q_proj", "v_proj"]
    assert TrainingConfig().target_module_list() == "all-linear"


@pytest.mark.parametrize("text, message", [("lora_rnak: 4\n", "unknown training config field"),
                                           ("- 1\n", "mapping"), ("a: [\n", "cannot read")])
def test_bad_yaml_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "lora.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        TrainingConfig.from_yaml(path)


def test_parser_has_a_flag_with_help_per_field() -> None:
    parser = build_parser()
    assert "LoRA rank r" in parser.format_help()
    helps = {action.dest: action.help for action in parser._actions}
    assert helps["lora_rank"] == "LoRA rank r"
    args = parser.parse_args(["--lora-rank", "4", "--packing", "--learning-rate", "0.01"])
    assert (args.lora_rank, args.packing, args.learning_rate, args.full) == (4, True, 0.01, None)
