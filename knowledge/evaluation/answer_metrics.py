"""Answer metrics: ROUGE-L F1 and SQuAD-style token F1 against the best reference, BLEU through
sacrebleu, and citation precision against the gold documents."""

from __future__ import annotations

import re
import string
from collections import Counter

from knowledge.citations.markers import strip_markers

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> list[str]:
    """Lower-cased tokens without punctuation, articles and citation markers (SQuAD's normalisation)."""
    text = strip_markers(text).lower().translate(_PUNCTUATION)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    predicted, gold = normalise(prediction), normalise(reference)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if not predicted or not gold or not common:
        return float(predicted == gold)
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 (longest common subsequence of normalised tokens)."""
    predicted, gold = normalise(prediction), normalise(reference)
    lcs = _lcs_length(predicted, gold)
    if not lcs:
        return 0.0
    precision, recall = lcs / len(predicted), lcs / len(gold)
    return 2 * precision * recall / (precision + recall)


def best_of(metric: str, prediction: str, references: list[str]) -> float:
    function = rouge_l if metric == "rouge_l" else token_f1
    return max((function(prediction, reference) for reference in references), default=0.0)


def corpus_bleu(predictions: list[str], references: list[list[str]]) -> float:
    """sacrebleu corpus BLEU in [0, 1]; questions with fewer references repeat their first one."""
    import sacrebleu

    if not predictions:
        return 0.0
    width = max(len(refs) for refs in references)
    streams = [[(refs[i] if i < len(refs) else refs[0]) for refs in references] for i in range(width)]
    hypotheses = [" ".join(normalise(p)) for p in predictions]
    streams = [[" ".join(normalise(r)) for r in stream] for stream in streams]
    return float(sacrebleu.corpus_bleu(hypotheses, streams).score) / 100.0


def citation_precision(cited_doc_ids: list[str], gold_ids: set[str]) -> tuple[int, int]:
    """(citations pointing to a gold document, citations)."""
    return sum(1 for doc_id in cited_doc_ids if doc_id in gold_ids), len(cited_doc_ids)
