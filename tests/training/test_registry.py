"""The adapter registry: versions, promote / rollback round trip, the atomic pointer, corrupt
adapters refused while the current one keeps serving, and the TGI value."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.errors import ConfigError, InvalidInputError, NotFoundError
from training.registry import AdapterRegistry, validate_adapter_dir


def fake_adapter(path: Path, *, seed: int = 0, base_sha: str = "base-a") -> Path:
    path.mkdir(parents=True)
    generator = torch.Generator().manual_seed(seed)
    save_file({"base_model.model.layers.0.q_proj.lora_A.weight": torch.randn(4, 8, generator=generator),
               "base_model.model.layers.0.q_proj.lora_B.weight": torch.randn(8, 4, generator=generator)},
              str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (path / "manifest.json").write_text(json.dumps({"base_model_config_sha256": base_sha, "metrics": {"last_loss": 0.5},
                                                    "created_at": "2026-01-01T00:00:00+00:00"}))
    return path


@pytest.fixture
def registry(tmp_path: Path) -> AdapterRegistry:
    return AdapterRegistry(tmp_path / "adapters")


def test_register_promote_rollback_round_trip(registry: AdapterRegistry, tmp_path: Path) -> None:
    v1 = registry.register(fake_adapter(tmp_path / "run1"), line="acme")
    v2 = registry.register(fake_adapter(tmp_path / "run2", seed=1), line="acme")
    assert (v1, v2) == ("v1", "v2") and registry.versions("acme") == ["v1", "v2"]
    assert registry.current("acme") is None
    assert json.loads((registry.path("v2", line="acme") / "manifest.json").read_text())["version"] == "v2"
    assert registry.promote("v1", line="acme") is None
    assert registry.promote("v2", line="acme") == "v1"
    assert registry.current_path("acme") == registry.root / "acme" / "v2"
    assert registry.rollback(line="acme") == "v1"
    assert registry.current("acme") == "v1"
    with pytest.raises(InvalidInputError, match="no earlier version"):
        registry.rollback(line="acme")
    assert [e["action"] for e in registry.history("acme")] == ["promote", "promote", "rollback"]
    assert [(r.version, r.current) for r in registry.listing()] == [("v1", True), ("v2", False)]


def test_pointer_is_replaced_atomically(registry: AdapterRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    registry.register(fake_adapter(tmp_path / "run1"))
    registry.register(fake_adapter(tmp_path / "run2", seed=1))
    registry.promote("v1")

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.promote("v2")
    monkeypatch.undo()
    assert (registry.root / "default" / "current").read_text() == "v1\n"
    assert not [p for p in (registry.root / "default").iterdir() if p.name.startswith(".current-")]
    registry.promote("v2")
    assert registry.current() == "v2"


def test_corrupt_adapter_is_refused_and_current_keeps_serving(registry: AdapterRegistry, tmp_path: Path) -> None:
    registry.register(fake_adapter(tmp_path / "good"))
    registry.promote("v1")
    registry.register(fake_adapter(tmp_path / "bad", seed=2))
    (registry.path("v2") / "adapter_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ConfigError, match="corrupt"):
        registry.promote("v2")
    assert registry.current() == "v1"
    broken = fake_adapter(tmp_path / "broken")
    (broken / "adapter_config.json").unlink()
    with pytest.raises(ConfigError, match=r"adapter_config\.json"):
        registry.register(broken)
    with pytest.raises(NotFoundError, match="v9"):
        registry.promote("v9")


def test_adapter_of_another_base_model_is_refused(registry: AdapterRegistry, tmp_path: Path) -> None:
    registry.register(fake_adapter(tmp_path / "a"))
    registry.promote("v1")
    registry.register(fake_adapter(tmp_path / "b", base_sha="base-b"))
    with pytest.raises(ConfigError, match="another base model"):
        registry.promote("v2")
    assert registry.current() == "v1"


def test_tgi_lora_adapters_value_names_each_lines_current(registry: AdapterRegistry, tmp_path: Path) -> None:
    assert registry.tgi_lora_adapters_value() == ""
    registry.register(fake_adapter(tmp_path / "a"), line="acme")
    registry.register(fake_adapter(tmp_path / "b"), line="globex")
    registry.register(fake_adapter(tmp_path / "c"), line="idle")
    registry.promote("v1", line="acme")
    registry.promote("v1", line="globex")
    assert registry.tgi_lora_adapters_value() == (f"acme-v1={(registry.root / 'acme' / 'v1').resolve()},"
                                                   f"globex-v1={(registry.root / 'globex' / 'v1').resolve()}")


def test_bad_line_names_are_refused(registry: AdapterRegistry) -> None:
    with pytest.raises(InvalidInputError, match="adapter line"):
        registry.versions("../etc")
    assert validate_adapter_dir is not None
