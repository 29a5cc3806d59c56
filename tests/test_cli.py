from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

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
    ingest = run_cli("ingest", str(SAMPLES), "--tenant", "acme", "--json", data_dir=data)
    assert ingest.returncode == 0, ingest.stderr
    summary = json.loads(ingest.stdout)
    assert summary["new"] == 7 and summary["failed"] == [] and summary["chunks_written"] > 10

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
