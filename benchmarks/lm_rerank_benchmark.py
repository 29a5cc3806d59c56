"""The query-likelihood rerank stage (``retrieval.lm_rerank``) against plain hybrid retrieval, in one
run on one index: recall@1 and MRR@10 gained, and query latency as a ratio to the baseline.

    python benchmarks/lm_rerank_benchmark.py --dataset ../shared/datasets/squad-dev --queries 300
"""

from __future__ import annotations

import argparse
import os
import tempfile

from report import print_report

from core.settings import Settings
from knowledge.evaluation.dataset import load_dataset
from knowledge.evaluation.retrieval_eval import evaluate_retrieval, index_dataset


def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("SUPPORTBOT_DATA_DIR", tempfile.mkdtemp(prefix="supportbot-lm-rerank-"))
    settings = Settings().model_copy(deep=True)
    settings.retrieval.lm_rerank_weight = args.weight
    settings.retrieval.lm_rerank_candidates = args.candidates
    settings.retrieval.lm_rerank_margin = args.margin
    dataset = load_dataset(args.dataset)
    store = index_dataset(settings, dataset, progress_bar=False)
    figures = {}
    for name, enabled in (("hybrid", False), ("hybrid+lm_rerank", True)):
        settings.retrieval.lm_rerank = enabled
        figures[name] = evaluate_retrieval(settings, dataset, limit=args.queries, modes=("hybrid",), store=store,
                                           progress_bar=not args.json)["hybrid"]
    base, reranked = figures["hybrid"], figures["hybrid+lm_rerank"]
    report = {"dataset": dataset.name, "queries": args.queries, "weight": args.weight, "candidates": args.candidates,
              "margin": args.margin,
              **{f"{name} {key}": round(value, 4) for name, scores in figures.items() for key, value in scores.items()},
              "recall@1 gained": round(reranked["recall@1"] - base["recall@1"], 4),
              "mrr@10 gained": round(reranked["mrr@10"] - base["mrr@10"], 4),
              "p50 latency ratio": round(reranked["p50_ms"] / base["p50_ms"], 1),
              "p95 latency ratio": round(reranked["p95_ms"] / base["p95_ms"], 1)}
    print_report(report, as_json=args.json)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="a data set directory (corpus.jsonl, questions.jsonl)")
    parser.add_argument("--queries", type=int, default=300, help="seeded sample of answerable questions")
    parser.add_argument("--weight", type=float, default=0.5, help="retrieval.lm_rerank_weight")
    parser.add_argument("--candidates", type=int, default=4, help="retrieval.lm_rerank_candidates")
    parser.add_argument("--margin", type=float, default=0.15, help="retrieval.lm_rerank_margin (1: read every candidate)")
    parser.add_argument("--json", action="store_true")
    main(parser.parse_args())
