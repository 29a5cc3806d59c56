from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from core.settings import Settings

SAMPLES = Path(__file__).resolve().parents[1] / "knowledge" / "samples"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def samples_copy(tmp_path: Path) -> Path:
    """A private copy of the sample manuals that a test may change."""
    import shutil

    target = tmp_path / "manuals"
    shutil.copytree(SAMPLES, target, ignore=shutil.ignore_patterns("*.py", "README.md"))
    return target


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 dequantized once per test session into a private cache (about 30 s), for tests that
    read the model without testing how it is loaded."""
    from knowledge.generation.smollm2 import cache_dir_for, load_base_model

    cache_dir = cache_dir_for(tmp_path_factory.mktemp("smollm2"))
    load_base_model("", cache_dir)
    return cache_dir
