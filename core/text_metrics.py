"""Answer-overlap metrics shared by the answer evaluation (knowledge) and the training gate
(training, which may import only core): SQuAD-style normalisation, token F1 and ROUGE-L F1."""

from __future__ import annotations

import re
import string
from collections import Counter

CITATION_MARKER = re.compile(r"\s?(?:\[\^?|【)(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)(?:\]|】)")
"""``[1]``, ``[1, 3]``, ``[1][2]``; also the ``【1】`` and ``[^1]`` forms small models produce."""

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> list[str]:
    """Lower-cased tokens without punctuation, articles and citation markers (SQuAD's normalisation)."""
    text = CITATION_MARKER.sub(" ", text).lower().translate(_PUNCTUATION)
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
