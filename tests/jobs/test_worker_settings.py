"""Worker settings: a malformed source or schedule is refused, naming the offending key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from api.cli import main
from core.settings import Settings, WorkerSettings, describe_validation_error, get_settings


def _source(name: str, **schedule: Any) -> dict[str, Any]:
    return {"name": name, "targets": ["manuals/"], "tenant": "acme", "schedule": schedule}


def _problem(**worker: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(worker=worker)  # type: ignore[arg-type]
    return describe_validation_error(caught.value)


def test_a_valid_worker_configuration_is_accepted() -> None:
    worker = WorkerSettings.model_validate({
        "sources": [_source("manuals", interval_minutes=30), _source("site", cron="0 3 * * 1-5")],
        "training": {"cron": "0 4 * * 0", "min_new_examples": 10}, "retention": {"days": 90, "cron": "15 2 * * *"}})
    assert [s.schedule.cron for s in worker.sources] == [None, "0 3 * * 1-5"]
    assert worker.training.min_new_examples == 10


def test_a_bad_cron_names_the_source_and_its_schedule() -> None:
    message = _problem(sources=[_source("a", interval_minutes=5), _source("b", cron="61 * * * *")])
    assert message.startswith("worker.sources[1].schedule: cron '61 * * * *'")


def test_a_cron_without_five_fields_is_refused() -> None:
    assert "must have 5 fields" in _problem(sources=[_source("a", cron="0 3 * *")])


def test_interval_and_cron_together_or_neither_are_refused() -> None:
    assert _problem(sources=[_source("a", interval_minutes=5, cron="0 3 * * *")]).startswith(
        "worker.sources[0].schedule: give either interval_minutes or cron")
    assert _problem(sources=[_source("a")]).startswith("worker.sources[0].schedule: give either")


def test_a_source_without_targets_or_with_an_unknown_key_is_refused() -> None:
    no_targets = {**_source("a", interval_minutes=5), "targets": []}
    assert _problem(sources=[no_targets]).startswith("worker.sources[0].targets:")
    typo = {**_source("a", interval_minutes=5), "prun": False}
    assert _problem(sources=[typo]).startswith("worker.sources[0].prun:")


def test_duplicate_source_names_and_bad_training_or_retention_crons_are_refused() -> None:
    assert "sources[1].name: 'a' is used twice" in _problem(sources=[_source("a", interval_minutes=5),
                                                                     _source("a", interval_minutes=6)])
    assert _problem(training={"cron": "0 25 * * *"}).startswith("worker.training: cron '0 25 * * *'")
    assert _problem(retention={"days": 0}).startswith("worker.retention.days:")


def test_the_worker_command_refuses_bad_settings_naming_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SUPPORTBOT_WORKER__SOURCES",
                       '[{"name": "a", "targets": ["x"], "tenant": "t", "schedule": {"cron": "* * *"}}]')
    get_settings.cache_clear()
    try:
        assert main(["worker"]) == 2
    finally:
        get_settings.cache_clear()
    assert "worker.sources[0].schedule: cron '* * *' must have 5 fields" in capsys.readouterr().err


def test_a_bad_training_config_file_stops_the_worker_at_start(tmp_path: Path) -> None:
    from core.errors import ConfigError
    from jobs.scheduler import check_training_config

    config = tmp_path / "lora.yaml"
    config.write_text("lora_rank: 8\nmax_seq_len: 384\n", encoding="utf-8")  # a misspelt field
    settings = Settings(worker=WorkerSettings.model_validate({"training": {"cron": "0 4 * * 0", "config": str(config)}}))
    with pytest.raises(ConfigError, match=r"^worker.training.config: unknown training config field\(s\): max_seq_len"):
        check_training_config(settings)
    config.write_text("lora_rank: 8\nmax_seq_length: 384\n", encoding="utf-8")
    check_training_config(settings)
