from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

MANUALS = [str(SAMPLES / product) for product in ("nimbus-r7", "lumen-brew3")]
"""The sample products' manuals, as the quickstart ingests them (not the samples' own README)."""

pytestmark = pytest.mark.slow


def run_cli(*args: str, data_dir: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir), "SUPPORTBOT_STORE__ELASTICSEARCH_API_KEY": "s3cret",
           **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600, check=False)


def test_config_masks_secrets(tmp_path: Path) -> None:
    result = run_cli("config", "--json", data_dir=tmp_path)
    assert result.returncode == 0
    config = json.loads(result.stdout)
    assert config["store"]["elasticsearch_api_key"] == "**********" and "s3cret" not in result.stdout


def test_invalid_settings_name_the_key(tmp_path: Path) -> None:
    result = run_cli("config", data_dir=tmp_path, env_extra={"SUPPORTBOT_RETRIEVAL__TOP_K": "zero"})
    assert result.returncode == 2 and "top_k" in result.stderr


def test_ingest_search_and_eval(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingest = run_cli("ingest", *MANUALS, "--tenant", "acme", "--json", data_dir=data)
    assert ingest.returncode == 0, ingest.stderr
    summary = json.loads(ingest.stdout)
    assert summary["new"] == 6 and summary["failed"] == [] and summary["chunks_written"] > 10

    search = run_cli("search", "hold the reset button", "--tenant", "acme", "--top-k", "2", data_dir=data)
    assert search.returncode == 0 and "Factory reset" in search.stdout.splitlines()[0]
    other = run_cli("search", "hold the reset button", "--tenant", "other", data_dir=data)
    assert other.stdout.strip() == "no results"
    for bad in ("", "x" * 100_000):
        refused = run_cli("search", bad, data_dir=data)
        assert refused.returncode == 2 and "query" in refused.stderr

    missing = run_cli("ingest", str(tmp_path / "nope"), data_dir=data)
    assert missing.returncode == 1 and "no such file" in missing.stderr

    evaluation = run_cli("eval", "retrieval", "--dataset", str(Path(__file__).parent / "data/manuals-eval"),
                         "--json", data_dir=data)
    assert evaluation.returncode == 0, evaluation.stderr
    result = json.loads(evaluation.stdout)
    assert result["n_questions"] == 185
    for mode in ("bm25", "dense", "hybrid"):
        assert set(result[mode]) == {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "p50_ms", "p95_ms"}
        assert 0 <= result[mode]["recall@5"] <= 1
    assert result["hybrid"]["recall@5"] >= 0.9


def test_eval_reports_malformed_dataset_line(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"id": "a", "title": "t", "text": "x"}\nnot json\n')
    (tmp_path / "questions.jsonl").write_text("")
    result = run_cli("eval", "retrieval", "--dataset", str(tmp_path), data_dir=tmp_path)
    assert result.returncode == 2 and "corpus.jsonl:2: invalid JSON" in result.stderr


def test_ask_prints_one_answer_as_json(tmp_path: Path) -> None:
    from core.schemas import Answer

    data = tmp_path / "data"
    ingest = run_cli("ingest", *MANUALS, "--json", data_dir=data)
    assert ingest.returncode == 0, ingest.stderr
    result = run_cli("ask", "How long do I hold the reset button to factory reset the Nimbus R7 router?",
                     "--generator", "extractive", "--json", data_dir=data)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = Answer.model_validate_json(lines[0])
    assert answer.generator == "extractive" and not answer.abstained and answer.grounded
    assert answer.citations and all(c.snippet and c.title for c in answer.citations)
    assert answer.retrieved and {c.chunk_id for c in answer.citations} <= {r.chunk_id for r in answer.retrieved}

    off_topic = run_cli("ask", "What is the capital of Australia?", "--generator", "extractive", "--json",
                        data_dir=data)
    assert off_topic.returncode == 0, off_topic.stderr
    refused = Answer.model_validate_json(off_topic.stdout)
    assert refused.abstained and refused.handoff_reason and refused.citations == []


def test_ask_refuses_an_empty_question(tmp_path: Path) -> None:
    for question in ("", "   "):
        result = run_cli("ask", question, "--generator", "extractive", "--json", data_dir=tmp_path)
        assert result.returncode == 2
        assert "question" in result.stderr and "empty" in result.stderr
        assert result.stdout == ""


def test_eval_answers_reports_metrics_per_generator(tmp_path: Path) -> None:
    result = run_cli("eval", "answers", "--dataset", str(Path(__file__).parent / "data/manuals-eval"),
                     "--generator", "extractive", "--limit", "10", "--json", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["n_answerable"] == 10 and 0 < report["n_unanswerable"] <= 10
    assert list(report["results"]) == ["extractive"]
    metrics = report["results"]["extractive"]
    for key in ("rouge_l", "bleu", "token_f1", "citation_precision", "grounded_rate", "abstention_rate"):
        assert isinstance(metrics[key], float | int) and not isinstance(metrics[key], bool), key
        assert 0.0 <= metrics[key] <= 1.0, key
    for key in ("p50_ms", "p95_ms"):
        assert isinstance(metrics[key], float | int) and metrics[key] > 0, key
    assert metrics["p50_ms"] <= metrics["p95_ms"]
    assert metrics["grounded_rate"] > 0  # extractive answers quote their sources


def test_eval_calibrate_chooses_a_threshold_on_one_half_and_reports_the_other(tmp_path: Path) -> None:
    result = run_cli("eval", "calibrate", "--dataset", str(Path(__file__).parent / "data/manuals-eval"),
                     "--limit", "40", "--thresholds", "0.3,0.45,0.6,0.75", "--json", data_dir=tmp_path / "data")
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stderr
    report = json.loads(lines[0])
    assert report["seed"] == 7 and report["max_abstention"] == 0.15 and report["current"] == 0.45
    assert report["n_calibration"]["answerable"] + report["n_test"]["answerable"] == 40
    rows = report["calibration"]
    assert [row["min_answer_probability"] for row in rows] == [0.3, 0.45, 0.6, 0.75]
    withheld = [row["abstention_rate"] for row in rows]
    assert withheld == sorted(withheld)  # a higher threshold withholds everything a lower one does, and more
    within = [row["min_answer_probability"] for row in rows if row["abstention_rate"] <= 0.15]
    assert report["chosen"] == (max(within) if within else None)
    assert result.returncode == (0 if within else 1)
    assert set(report["test_current"]) == {"citation_precision", "abstention_rate", "unanswerable_abstention_rate",
                                           "rouge_l"}
    if report["chosen"] == report["current"]:
        assert report["test_chosen"] == report["test_current"]


@pytest.mark.parametrize(("option", "value", "reason"), [
    ("--thresholds", "0.4,1.5", "must be within (0, 1), not 1.5"),
    ("--thresholds", "0.4,high", "not a number: 'high'"),
    ("--thresholds", ",", "give at least one threshold"),
    ("--max-abstention", "0", "must be within (0, 1), not 0"),
    ("--holdout", "1", "must be at least 0 and below 1, not 1"),
    ("--limit", "0", "must be >= 1, not 0"),
    ("--limit", "ten", "not a whole number: 'ten'"),
])
def test_eval_calibrate_refuses_bad_options(tmp_path: Path, option: str, value: str, reason: str) -> None:
    result = run_cli("eval", "calibrate", "--dataset", str(tmp_path), option, value, data_dir=tmp_path)
    assert result.returncode == 2 and option in result.stderr and reason in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("option", "value", "reason"), [
    ("--holdout", "-0.1", "must be at least 0 and below 1, not -0.1"),
    ("--limit", "-3", "must be >= 1, not -3"),
])
def test_eval_answers_refuses_bad_sample_options(tmp_path: Path, option: str, value: str, reason: str) -> None:
    result = run_cli("eval", "answers", "--dataset", str(tmp_path), option, value, data_dir=tmp_path)
    assert result.returncode == 2 and option in result.stderr and reason in result.stderr


def test_eval_calibrate_names_the_malformed_dataset_line(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"id": "a", "title": "t", "text": "x"}\n')
    (tmp_path / "questions.jsonl").write_text('{"id": "q1", "question": "?"}\n{"id": 2\n')
    result = run_cli("eval", "calibrate", "--dataset", str(tmp_path), data_dir=tmp_path)
    assert result.returncode == 2 and "questions.jsonl:2: invalid JSON" in result.stderr
