"""Fit the answer likelihood model (``knowledge/answer_likelihood.py``) on calibration questions and
show, for each threshold, what it would do on each set.

Every ``--set`` is a data set directory with options: ``limit``, ``holdout`` and ``seed`` draw its
questions as ``supportbot eval answers`` does (use seeds other than the reported run's 13), and
``half=calibration`` keeps the calibration half of its paraphrase groups
(:mod:`knowledge.evaluation.calibration`; the test half is what the README reports). Each data set
directory weighs the same in the fit, however many questions it gives::

    python benchmarks/fit_answer_likelihood.py \\
        --set tests/data/manuals-eval:half=calibration \\
        --set ../shared/datasets/squad-dev:limit=400,holdout=0.2,seed=7 \\
        --set ../shared/datasets/squad-dev:limit=800,holdout=0.2,seed=21 \\
        --out knowledge/answer_likelihood.json

A question's label: its answer would cite a gold document (the source of the sentence an extractive
answer quotes first). Unanswerable questions are never right. The printed threshold is the largest
that abstains on at most ``--max-abstention`` of every set's answerable questions; set it as
``answer.min_answer_probability``, then report the test halves and the reported run with
``supportbot eval answers``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from knowledge.answer_likelihood import AnswerEvidence, AnswerLikelihood
from knowledge.answering import AnswerPipeline
from knowledge.evaluation.answer_eval import select_questions
from knowledge.evaluation.calibration import halves
from knowledge.evaluation.dataset import load_dataset
from knowledge.evaluation.retrieval_eval import index_dataset
from knowledge.generation.factory import extractive_generator
from knowledge.retrieval import KnowledgeSearch


@dataclass
class Observed:
    evidence: AnswerEvidence | None
    """None when a cheaper check (retrieval cosine, question coverage) already abstains"""
    answerable: bool
    right: bool


@dataclass
class CalibrationSet:
    name: str
    directory: str
    observed: list[Observed] = field(default_factory=list)


def parse_set(text: str) -> tuple[str, dict[str, str]]:
    """``"DIR:limit=400,seed=7"`` -> ``("DIR", {"limit": "400", "seed": "7"})``."""
    directory, _, options = text.partition(":")
    pairs = [item.split("=", 1) for item in options.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"--set {text}: options are key=value, separated by commas")
    unknown = {key for key, _ in pairs} - {"limit", "holdout", "seed", "half"}
    if unknown:
        raise SystemExit(f"--set {text}: unknown options {sorted(unknown)}")
    return directory, dict(pairs)


def observe(settings: Settings, text: str) -> CalibrationSet:
    directory, options = parse_set(text)
    questions = select_questions(load_dataset(directory), limit=int(options["limit"]) if "limit" in options else None,
                                 holdout=float(options.get("holdout", 0)), seed=int(options.get("seed", 13)))
    if options.get("half") == "calibration":
        questions = halves(questions)[0]
    store = index_dataset(settings, questions.dataset, progress_bar=False, answer_vectors=True)
    search = KnowledgeSearch(settings, store)
    generator = extractive_generator(settings)
    pipeline = AnswerPipeline(settings, search, generator, extractive=generator)
    pipeline.warm_up()
    doc_ids = {doc.id: str(doc.meta.get("doc_id")) for doc in store.filter_documents()}
    result = CalibrationSet(text, directory)
    for answerable, batch in ((True, questions.answerable), (False, questions.unanswerable)):
        for question in batch:
            chunks = search.search(question.question, top_k=settings.answer.sources)
            if pipeline.insufficient_support(question.question, chunks):
                result.observed.append(Observed(None, answerable, right=False))
                continue
            evidence = pipeline.evidence(question.question, chunks)
            rank = evidence.assessment.source_rank
            right = answerable and rank > 0 and doc_ids.get(chunks[rank - 1].id) in set(question.gold_ids)
            result.observed.append(Observed(evidence, answerable, right))
    return result


def outcome(observed: list[Observed], model: AnswerLikelihood, threshold: float) -> dict[str, float]:
    """Citation precision (per answer), abstention on answerable and on unanswerable questions."""
    def answers(o: Observed) -> bool:
        return o.evidence is not None and model.probability(o.evidence) >= threshold

    answerable = [o for o in observed if o.answerable]
    unanswerable = [o for o in observed if not o.answerable]
    answered = [o for o in answerable if answers(o)]
    return {"citation_precision": round(sum(o.right for o in answered) / max(len(answered), 1), 3),
            "abstention_rate": round(1 - len(answered) / max(len(answerable), 1), 3),
            "unanswerable_abstention_rate": round(sum(not answers(o) for o in unanswerable) / max(len(unanswerable), 1), 3)}


def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("SUPPORTBOT_DATA_DIR", tempfile.mkdtemp(prefix="supportbot-fit-"))
    # the model is fitted on what the other checks let through, so it is off while observing
    settings = Settings().model_copy(deep=True)
    settings.answer.min_answer_probability = 0.0
    sets = [observe(settings, text) for text in args.set]
    per_directory: dict[str, int] = {}
    for calibration_set in sets:
        per_directory[calibration_set.directory] = per_directory.get(calibration_set.directory, 0) + 1
    evidence, right, weights = [], [], []
    for calibration_set in sets:
        usable = [o for o in calibration_set.observed if o.evidence is not None]
        share = 1.0 / len(per_directory) / per_directory[calibration_set.directory]
        for o in usable:
            assert o.evidence is not None
            evidence.append(o.evidence)
            right.append(o.right)
            weights.append(share / len(usable))
    model = AnswerLikelihood.fit(evidence, right, weights, l2=args.l2, trained_on=" + ".join(args.set))
    table = {f"{t:.2f}": {s.name: outcome(s.observed, model, t) for s in sets} for t in args.thresholds}
    eligible = [t for t in args.thresholds
                if all(figures["abstention_rate"] <= args.max_abstention for figures in table[f"{t:.2f}"].values())]
    print(json.dumps({"model": model.to_dict(), "thresholds": table,
                      "largest_threshold_within_bound": max(eligible) if eligible else None}, indent=2))
    if args.out:
        model.save(Path(args.out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", required=True, help="DIR[:limit=N,holdout=F,seed=S,half=calibration]")
    parser.add_argument("--out", help="write the fitted model here (knowledge/answer_likelihood.json ships)")
    parser.add_argument("--l2", type=float, default=1.0, help="L2 penalty on the standardised weights")
    parser.add_argument("--max-abstention", type=float, default=0.15,
                        help="the most abstention on any set's answerable questions a threshold may cause")
    parser.add_argument("--thresholds", type=float, nargs="+",
                        default=[0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6])
    main(parser.parse_args())
