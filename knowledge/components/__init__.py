"""Haystack components, one per module, in data-flow order:
convert -> split -> embed (documents) | embed (query) -> retrieve (BM25, dense) -> fuse -> optional
rerank (best sentence by MiniLM, query likelihood by SmolLM2)."""
