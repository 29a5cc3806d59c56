"""How well a source supports a sentence: the share of the sentence's content terms (stemmed, stop
words removed, numbers kept) that the source contains. Cheap, deterministic and strict about
numbers ("10 seconds" is not supported by "30 seconds"); the threshold is measured on evaluation
data (see README, "Citation support threshold")."""

from __future__ import annotations

from knowledge.sentences import split_sentences
from knowledge.text_analysis import term_set

MIN_CLAIM_TERMS = 2
"""Sentences with fewer content terms ("Sure!", "Hope this helps.") make no claim to check."""


def content_terms(text: str) -> frozenset[str]:
    """The distinct terms of a sentence or a source (remembered by :func:`term_set`)."""
    return term_set(text)


def _has_digit(term: str) -> bool:
    return any(ch.isdigit() for ch in term)


def support(sentence_terms: frozenset[str], source: str) -> float:
    """Fraction of ``sentence_terms`` found in ``source``; 0 when the sentence has no terms or names
    a number (or a code with digits, such as "E15") that the source does not contain."""
    if not sentence_terms:
        return 0.0
    found = sentence_terms & content_terms(source)
    if any(_has_digit(term) for term in sentence_terms - found):
        return 0.0
    return len(found) / len(sentence_terms)


def best_passage(sentence_terms: frozenset[str], source: str, max_chars: int = 320) -> str:
    """The sentence of ``source`` that shares most terms with the claim: the quoted snippet."""
    candidates = split_sentences(source) or [source]
    best = max(candidates, key=lambda candidate: len(sentence_terms & content_terms(candidate)))
    return best if len(best) <= max_chars else best[: max_chars - 1].rsplit(" ", 1)[0] + "…"
