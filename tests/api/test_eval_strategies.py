"""``supportbot eval strategies`` end to end on a tiny slice of the manual set: the real SmolLM2,
a LoRA adapter trained for two steps, and the four strategies scored on the same held-out questions.

To stay within a few minutes on two shared cores the run is cut down through flags and settings:
8 training and 3 held-out questions, 2 training steps, 24-token answers, one retrieved source and
no second attempt when an answer fails the citation check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.strategy_comparison import StrategyOptions, held_out_split
from knowledge.evaluation.dataset import load_dataset

pytestmark = pytest.mark.slow

DATASET = Path(__file__).resolve().parents[1] / "data" / "manuals-eval"
STRATEGIES = ["prompt-only", "rag", "lora", "lora+rag"]
FIELDS = {"rouge_l", "bleu", "token_f1", "citation_precision", "p50_ms", "trainable_params", "train_seconds",
          "peak_memory_mb"}


def test_the_split_keeps_paraphrases_on_one_side_and_scores_answerable_questions_only() -> None:
    dataset = load_dataset(DATASET)
    split = held_out_split(dataset, StrategyOptions(train_fraction=0.7, seed=0, test_questions=None))
    assert not {q.group or q.id for q in split.train} & {q.group or q.id for q in split.test}
    assert all(q.gold_ids and q.answers for q in split.train + split.test)
    assert 0.6 < len(split.train) / (len(split.train) + len(split.test)) < 0.8
    capped = held_out_split(dataset, StrategyOptions(seed=0, train_questions=8, test_questions=3))
    assert capped.train == split.train[:8] and capped.test == split.test[:3]


def test_eval_strategies_reports_four_strategies_as_one_json_object(tmp_path: Path) -> None:
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(tmp_path / "data"), "SUPPORTBOT_ANSWER__SOURCES": "1",
           "SUPPORTBOT_ANSWER__REGENERATE_ONCE": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "eval", "strategies", "--dataset", str(DATASET), "--train-questions", "8",
         "--test-questions", "3", "--max-steps", "2", "--max-new-tokens", "24", "--threads", "1", "--json",
         "--work-dir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout[:2000]
    report = json.loads(lines[0])
    assert report["dataset"] == "manuals-eval" and report["n_train"] == 8 and report["n_test"] == 3
    assert list(report["results"]) == STRATEGIES
    for name, metrics in report["results"].items():
        assert set(metrics) == FIELDS, name
        for key in ("rouge_l", "bleu", "token_f1", "citation_precision"):
            assert 0.0 <= metrics[key] <= 1.0, (name, key)
        assert metrics["p50_ms"] > 0 and metrics["peak_memory_mb"] > 100, name
        trained = name.startswith("lora")
        assert (metrics["trainable_params"] > 0) is trained, name
        assert (metrics["train_seconds"] > 0) is trained, name
    assert report["results"]["prompt-only"]["citation_precision"] == 0.0  # no sources, nothing to cite
    assert report["training"]["steps"] == 2 and report["training"]["examples"] == 8
    assert (tmp_path / "work" / "adapter" / "adapter_config.json").is_file()
