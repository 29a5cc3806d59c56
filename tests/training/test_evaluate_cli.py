"""`supportbot train evaluate` in-process, with scripted models in place of the local model: both
sets scored, the decision and its reasons, --json, evaluation.json next to the candidate, and
--promote only when the gate passes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from api.cli import build_parser
from api.cli_training import cmd_train_evaluate
from core.abstention import is_abstention
from core.settings import Settings
from training.evaluate import GateConfig
from training.golden_set import golden_set_version, load_golden_set

from .test_registry import fake_adapter

GOLDEN = {example["messages"][1]["content"]: example["messages"][-1]["content"] for example in load_golden_set()}
TEST_SPLIT = [next(e for e in load_golden_set() if e["id"] == f"g{n:02}") for n in range(1, 7)]


def dataset(path: Path) -> Path:
    """A dataset directory whose test split is six golden examples (any prompt of the right format will do)."""
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps({"content_sha256": "0" * 64}))
    (path / "test.jsonl").write_text("".join(json.dumps(e) + "\n" for e in TEST_SPLIT))
    return path


def perfect(messages: list[dict[str, str]]) -> str:
    return GOLDEN[messages[-1]["content"]]


def never_abstains(messages: list[dict[str, str]]) -> str:
    reference = GOLDEN[messages[-1]["content"]]
    return "The manuals say yes, it does that [1]." if is_abstention(reference) else reference


def weak(messages: list[dict[str, str]]) -> str:
    return "Please restart the device."


@pytest.fixture
def evaluate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str]]:
    """Runs the command with ``models`` (adapter directory name or "base" -> generate callable)."""
    settings = Settings(data_dir=tmp_path / "data")
    candidate = fake_adapter(tmp_path / "candidate")
    manifest = json.loads((candidate / "manifest.json").read_text())
    (candidate / "manifest.json").write_text(json.dumps({**manifest, "base_model": str(tmp_path / "no-model")}))
    data = dataset(tmp_path / "ds")

    def run(models: dict[str, object], *flags: str) -> tuple[int, str]:
        monkeypatch.setattr("api.cli_training.local_generate",
                            lambda settings, base, adapter: models[adapter.name if adapter else "base"])
        args = build_parser().parse_args(["train", "evaluate", "--candidate", str(candidate), "--dataset", str(data),
                                          *flags])
        return cmd_train_evaluate(args, settings), str(candidate)

    return run


def test_json_output_scores_both_sets_and_promotes_a_real_improvement(
        evaluate: Callable[..., tuple[int, str]], capsys: pytest.CaptureFixture[str]) -> None:
    code, candidate = evaluate({"candidate": perfect, "base": weak}, "--json", "--promote")
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["promote"] and result["promoted"] == "default/v1"
    assert result["golden_set"] == golden_set_version() and result["compared_with"] == "base"
    assert result["sets"]["held_out"]["n_examples"] == 6 and result["sets"]["golden"]["n_examples"] == len(GOLDEN)
    assert result["sets"]["golden"]["results"]["candidate"] == {
        "rouge_l": 1.0, "token_f1": 1.0, "citation_precision": 1.0, "grounded_rate": 1.0, "abstention_correctness": 1.0}
    saved = json.loads((Path(candidate) / "evaluation.json").read_text())
    assert set(saved["answers"]) == {"held_out", "golden"} and len(saved["answers"]["golden"]["base"]) == len(GOLDEN)


def test_text_output_refuses_a_golden_set_regression(evaluate: Callable[..., tuple[int, str]], capsys: pytest.CaptureFixture[str]) -> None:
    code, candidate = evaluate({"candidate": never_abstains, "base": perfect}, "--promote", "--margin", "0")
    out = capsys.readouterr().out
    assert code == 0 and "KEEP CURRENT: " in out and "promoted" not in out
    assert "held_out: 6 examples from the test split of" in out and f"golden: {len(GOLDEN)} examples" in out
    assert "golden: abstention_correctness falls by" in out
    assert not (Path(candidate).parents[0] / "data" / "adapters" / "default" / "current").exists()


def test_the_gate_options_are_the_gate_config_fields() -> None:
    args = build_parser().parse_args(["train", "evaluate", "--candidate", "x"])
    assert (args.primary, args.margin, args.tolerance, args.min_examples) == (
        GateConfig.primary, GateConfig.margin, GateConfig.tolerance, GateConfig.min_examples)
    assert build_parser().parse_args(["train", "evaluate", "--candidate", "x", "--primary", "grounded_rate",
                                      "--tolerance", "0.05"]).tolerance == 0.05
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "evaluate", "--candidate", "x", "--primary", "citation_f1"])
