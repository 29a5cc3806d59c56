"""Answer metrics: ROUGE-L F1 and SQuAD-style token F1 against the best reference, BLEU through
sacrebleu, and citation precision against the gold documents."""

from __future__ import annotations

from core.text_metrics import normalise, rouge_l, token_f1

__all__ = ["best_of", "citation_precision", "corpus_bleu", "normalise", "rouge_l", "token_f1"]


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
