"""The document-store factory: the embedded store or Elasticsearch 8.x, chosen by settings."""

from __future__ import annotations

from typing import Any

from haystack.document_stores.types import DocumentStore
from haystack.utils import Secret

from core.settings import Settings
from knowledge.persistent_store import PersistentDocumentStore

EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2

# Metadata fields filtered on exactly (tenant isolation, product/version filters, incremental
# indexing by source) are keywords; titles and headings are analysed text so BM25 matches them.
_KEYWORD_FIELDS = ("tenant", "product", "version", "language", "source", "source_hash", "url",
                   "doc_id", "file_type")


def elasticsearch_mapping(dimensions: int = EMBEDDING_DIMENSIONS) -> dict[str, Any]:
    """The index mapping: a cosine ``dense_vector`` for kNN and English-analysed text for BM25."""
    properties: dict[str, Any] = {
        "content": {"type": "text", "analyzer": "english"},
        "title": {"type": "text", "analyzer": "english", "fields": {"raw": {"type": "keyword"}}},
        "heading_path": {"type": "text", "analyzer": "english"},
        "embedding": {"type": "dense_vector", "dims": dimensions, "index": True, "similarity": "cosine"},
        "page": {"type": "integer"},
        "chunk_index": {"type": "integer"},
    }
    properties.update({name: {"type": "keyword"} for name in _KEYWORD_FIELDS})
    return {
        "properties": properties,
        "dynamic_templates": [
            {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}},
        ],
    }


def index_path(settings: Settings) -> str:
    return str(settings.data_dir / "index" / "documents.json")


def build_document_store(settings: Settings) -> DocumentStore:
    """The configured store. The embedded one reloads its saved index; Elasticsearch is contacted
    lazily, on first use."""
    if settings.store.backend == "memory":
        return PersistentDocumentStore(
            path=index_path(settings), bm25_k1=settings.retrieval.bm25_k1, bm25_b=settings.retrieval.bm25_b
        )
    from haystack_integrations.document_stores.elasticsearch import ElasticsearchDocumentStore

    store_settings = settings.store
    extra: dict[str, Any] = {"request_timeout": store_settings.request_timeout_s}
    if store_settings.elasticsearch_username and store_settings.elasticsearch_password:
        extra["basic_auth"] = (store_settings.elasticsearch_username,
                               store_settings.elasticsearch_password.get_secret_value())
    api_key = store_settings.elasticsearch_api_key
    return ElasticsearchDocumentStore(
        hosts=store_settings.elasticsearch_url,
        index=store_settings.elasticsearch_index,
        custom_mapping=elasticsearch_mapping(),
        embedding_similarity_function="cosine",
        api_key=Secret.from_token(api_key.get_secret_value()) if api_key else None,
        api_key_id=None,
        **extra,
    )
