"""Choose answer thresholds on one half of a data set's questions and report them on the other.

The extractive generator answers the calibration half and the test half
(:mod:`knowledge.evaluation.calibration`: split by paraphrase group) over the same retrieved chunks
for every combination of the ``--grid`` values; the data set is indexed and each question retrieved
once. Pick a combination by its calibration figures, then quote its test figures::

    python benchmarks/answer_calibration.py --dataset tests/data/manuals-eval \\
        --grid min_answer_confidence=1.3,1.4,1.5 --grid max_unmatched_focus=0.2,0.22,0.24
    python benchmarks/answer_calibration.py --dataset ../shared/datasets/squad-dev --limit 400 \\
        --holdout 0.2 --seed 7 --grid min_answer_confidence=1.4,1.5

``--seed`` also draws the ``--limit`` sample and the held-out documents: with squad-dev, use a seed
other than the evaluation's default (13) to calibrate on questions the reported run does not ask.
"""

from __future__ import annotations

import argparse
import itertools
import json
from typing import Any

from core.settings import Settings
from knowledge.answering import AnswerPipeline
from knowledge.evaluation.answer_eval import EvalQuestions, RunScores, select_questions
from knowledge.evaluation.calibration import RecordedSearch, halves
from knowledge.evaluation.dataset import load_dataset
from knowledge.evaluation.retrieval_eval import index_dataset
from knowledge.generation.factory import extractive_generator

REPORTED = ("citation_precision", "abstention_rate", "unanswerable_abstention_rate", "rouge_l")


def grid_points(grid: list[str]) -> list[dict[str, float | int]]:
    """``["a=1,2", "b=3"]`` -> ``[{"a": 1, "b": 3}, {"a": 2, "b": 3}]``."""
    axes = []
    for item in grid:
        name, _, values = item.partition("=")
        axes.append([(name.strip(), _number(value.strip())) for value in values.split(",") if value.strip()])
    return [dict(point) for point in itertools.product(*axes)]


def _number(text: str) -> float | int:
    """``"4"`` -> 4 (counts such as ``sources`` must stay integers), ``"1.5"`` -> 1.5."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


def score(
    settings: Settings, search: RecordedSearch, questions: EvalQuestions, doc_ids: dict[str, str]
) -> dict[str, Any]:
    generator = extractive_generator(settings)
    pipeline = AnswerPipeline(settings, search, generator, extractive=generator)
    scores = RunScores()
    for question in questions.answerable:
        scores.add_answerable(question, pipeline.answer(question.question), doc_ids)
    for question in questions.unanswerable:
        scores.add_unanswerable(pipeline.answer(question.question))
    metrics = scores.as_dict()
    return {name: round(metrics[name], 3) if metrics[name] is not None else None for name in REPORTED}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--holdout", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--grid", action="append", default=[], help="answer setting=v1,v2,... (repeatable)")
    args = parser.parse_args()
    base = Settings()
    questions = select_questions(load_dataset(args.dataset), limit=args.limit, holdout=args.holdout, seed=args.seed)
    store = index_dataset(base, questions.dataset, progress_bar=False, answer_vectors=True)
    search = RecordedSearch(base, store)
    search.warm_up()
    doc_ids = {doc.id: str(doc.meta.get("doc_id")) for doc in store.filter_documents()}
    calibration, test = halves(questions)
    for point in grid_points(args.grid) or [{}]:
        settings = base.model_copy(update={"answer": base.answer.model_copy(update=point)})
        print(
            json.dumps(
                {
                    "settings": point,
                    "calibration": score(settings, search, calibration, doc_ids),
                    "test": score(settings, search, test, doc_ids),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
