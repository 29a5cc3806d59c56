"""The knowledge base: ingest -> index -> retrieve (Haystack components and pipelines)."""
