"""The citation check run after every generation.

Small models cite badly (SmolLM2 cited a source in 4 answers of 60), so citations are not left to
the model: each answer sentence is aligned with the sources. A cited source that supports the
sentence is kept; a marker of a source that was not given is removed; a sentence whose cited source
does not support it is attributed to the given source that does; a sentence no source supports is
dropped. The surviving citations are renumbered in order of first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from haystack import Document

from core.schemas import Citation
from knowledge.citations.instructions import addresses_the_assistant
from knowledge.citations.links import remove_foreign_links
from knowledge.citations.markers import marker_numbers, strip_markers, with_markers
from knowledge.citations.support import MIN_CLAIM_TERMS, best_passage, content_terms, support
from knowledge.sentences import split_sentences


@dataclass
class CitationCheck:
    """The checked answer. ``grounded``: at least one claim, and every claim supported."""

    text: str
    citations: list[Citation]
    grounded: bool
    claims: int = 0
    supported: int = 0
    dropped: list[str] = field(default_factory=list)
    invalid_markers: int = 0
    reattributed: int = 0
    links_removed: int = 0


def citation_from(document: Document, number: int, snippet: str) -> Citation:
    meta = document.meta
    heading_path = [str(part) for part in meta.get("heading_path") or []]
    page = meta.get("page")
    return Citation(number=number, chunk_id=document.id, title=str(meta.get("title") or meta.get("source") or ""),
                    heading_path=heading_path, page=int(page) if isinstance(page, int) else None,
                    url=meta.get("url"), source=meta.get("source"), snippet=snippet)


def _squeezed(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _holds(sentence: str, canary: str) -> bool:
    """Whether ``sentence`` holds ``canary``, ignoring case, spaces and punctuation (a model may space
    it out or drop its dashes, which also turns it into one word: too short a claim to be checked)."""
    squeezed = _squeezed(canary)
    return bool(squeezed) and squeezed in _squeezed(sentence)


def _never_shown(sentence: str, canary: str) -> bool:
    """Dropped whatever the sources say: the system prompt's secret marker, or a sentence spoken to
    the assistant (a planted instruction a model repeats is "supported" by the document planting it)."""
    return (bool(canary) and _holds(sentence, canary)) or addresses_the_assistant(sentence)


def _echoes(terms: frozenset[str], withheld: str, threshold: float, scores: list[float]) -> bool:
    """Whether ``withheld`` supports a claim at least as well as the threshold and every source."""
    return bool(withheld) and support(terms, withheld) >= max([threshold, *scores])


def link_sources(sources: list[Document]) -> list[str]:
    """What a link in an answer may point to: the sources' texts and their ``url``."""
    return [*(doc.content or "" for doc in sources), *(str(doc.meta["url"]) for doc in sources if doc.meta.get("url"))]


StreamVerdict = Literal["supported", "aside", "withhold", "unsupported"]


def stream_verdict(sentence: str, sources: list[str], threshold: float, *, withheld: str = "",
                   canary: str = "") -> StreamVerdict:
    """Whether a finished ``sentence`` may be streamed before the whole answer is checked: the
    per-sentence decisions of :func:`check_citations`, so that a sentence the final check would drop
    is never shown and then taken back. ``withhold``: it holds ``canary``, addresses the assistant, or
    is a claim ``withheld`` (the system prompt) supports better than the sources; ``unsupported``: a claim no source supports
    at ``threshold``; ``supported``: a claim a source supports; ``aside``: too short to be a claim.
    Only ``supported`` and ``aside`` sentences are shown."""
    if _never_shown(sentence, canary):
        return "withhold"
    terms = content_terms(strip_markers(sentence))
    if len(terms) < MIN_CLAIM_TERMS:
        return "aside"
    scores = [support(terms, text) for text in sources]
    if _echoes(terms, withheld, threshold, scores):
        return "withhold"
    return "supported" if max(scores, default=0.0) >= threshold else "unsupported"


def check_citations(answer: str, sources: list[Document], threshold: float, *, withheld: str = "",
                    canary: str = "") -> CitationCheck:
    """Align each sentence of ``answer`` with ``sources`` (numbered from 1 in the prompt).

    ``withheld`` is text that must never be repeated (the system prompt): a sentence it supports
    better than any source is dropped even when a source would pass the threshold. A sentence that
    holds ``canary`` (the system prompt's secret marker) or addresses the assistant
    (:mod:`knowledge.citations.instructions`: a planted instruction, echoed) is always dropped,
    claim or not."""
    texts = [doc.content or "" for doc in sources]
    answer, links_removed = remove_foreign_links(answer, link_sources(sources))
    renumbered: dict[int, int] = {}
    snippets: dict[int, str] = {}
    kept: list[str] = []
    result = CitationCheck(text="", citations=[], grounded=False, links_removed=links_removed)
    for sentence in split_sentences(answer):
        if _never_shown(sentence, canary):
            result.dropped.append(sentence)
            continue
        cited = marker_numbers(sentence)
        valid = [n for n in cited if 1 <= n <= len(sources)]
        result.invalid_markers += len(cited) - len(valid)
        plain = strip_markers(sentence)
        terms = content_terms(plain)
        if len(terms) < MIN_CLAIM_TERMS:
            kept.append(plain)
            continue
        result.claims += 1
        scores = [support(terms, text) for text in texts]
        if _echoes(terms, withheld, threshold, scores):
            result.dropped.append(plain)
            continue
        backed = [n for n in valid if scores[n - 1] >= threshold]
        if not backed and scores:
            best = max(range(len(scores)), key=lambda i: scores[i]) + 1
            if scores[best - 1] >= threshold:
                backed = [best]
                result.reattributed += 1
        if not backed:
            result.dropped.append(plain)
            continue
        result.supported += 1
        numbers = []
        for n in backed:
            if n not in renumbered:
                renumbered[n] = len(renumbered) + 1
                snippets[n] = best_passage(terms, texts[n - 1])
            numbers.append(renumbered[n])
        kept.append(with_markers(plain, numbers))
    result.text = " ".join(kept).strip()
    result.citations = [citation_from(sources[n - 1], number, snippets[n]) for n, number in renumbered.items()]
    result.grounded = result.supported > 0 and result.supported == result.claims
    return result
