"""`supportbot train ...` end to end in a subprocess: registry commands, opt-out, and the clear
error of a dataset built from an empty log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import run_cli

from .test_registry import fake_adapter

pytestmark = pytest.mark.slow


def test_promote_rollback_list_and_tgi_env(tmp_path: Path) -> None:
    from training.registry import AdapterRegistry

    data = tmp_path / "data"
    registry = AdapterRegistry(data / "adapters")
    registry.register(fake_adapter(tmp_path / "a"))
    registry.register(fake_adapter(tmp_path / "b", seed=1))
    assert run_cli("train", "promote", "v1", data_dir=data).returncode == 0
    promoted = run_cli("train", "promote", "v2", data_dir=data)
    assert promoted.returncode == 0 and "current is now v2 (was v1)" in promoted.stdout
    listing = json.loads(run_cli("train", "list", "--json", data_dir=data).stdout)
    assert [(row["version"], row["current"]) for row in listing] == [("v1", False), ("v2", True)]
    assert "default-v2=" in run_cli("train", "tgi-env", data_dir=data).stdout
    back = run_cli("train", "rollback", data_dir=data)
    assert back.returncode == 0 and "rolled back to v1" in back.stdout
    missing = run_cli("train", "promote", "v7", data_dir=data)
    assert missing.returncode == 2 and "no adapter version 'v7'" in missing.stderr


def test_dataset_from_an_empty_log_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli("tenants", "create", "acme", data_dir=data).returncode == 0
    assert run_cli("train", "opt-out", "user-1", "--tenant", "acme", data_dir=data).returncode == 0
    result = run_cli("train", "dataset", "--tenant", "acme", "--since", "2026-01-01", data_dir=data)
    assert result.returncode == 2 and "no training examples for tenant 'acme'" in result.stderr
    bad = run_cli("train", "dataset", "--since", "yesterday", data_dir=data)
    assert bad.returncode == 2 and "--since" in bad.stderr
