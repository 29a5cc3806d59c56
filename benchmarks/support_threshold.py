"""How often the sentence-support threshold accepts a wrong source.

Every sentence of every indexed chunk is checked against the three most BM25-similar *other*
chunks (hard negatives); the share of those pairs scoring at or above each threshold is printed.
Run after ``supportbot ingest knowledge/samples``::

    python benchmarks/support_threshold.py
"""

from __future__ import annotations

import numpy as np

from core.settings import get_settings
from knowledge.citations.support import MIN_CLAIM_TERMS, content_terms, support
from knowledge.document_store import build_document_store
from knowledge.retrieval import KnowledgeSearch
from knowledge.sentences import split_sentences


def main() -> None:
    settings = get_settings()
    store = build_document_store(settings)
    search = KnowledgeSearch(settings, store, mode="bm25")
    scores = []
    for chunk in store.filter_documents():
        claims = [s for s in split_sentences(chunk.content or "") if len(content_terms(s)) >= MIN_CLAIM_TERMS]
        for claim in claims[:6]:
            others = [o for o in search.search(claim[: settings.retrieval.max_query_chars], top_k=4) if o.id != chunk.id]
            scores += [support(content_terms(claim), other.content or "") for other in others[:3]]
    values = np.asarray(scores)
    print(f"{len(values)} (sentence, wrong source) pairs")
    for threshold in (0.4, 0.5, 0.6, 0.7, 0.8):
        print(f"threshold {threshold:.1f}: accepts {float((values >= threshold).mean()):.3f} of wrong sources")


if __name__ == "__main__":
    main()
