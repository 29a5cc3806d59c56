"""``supportbot eval calibrate``: choose the answer likelihood threshold
(``answer.min_answer_probability``) on a team's own questions.

The shipped threshold was chosen on the sample manuals and SQuAD (README, "Answers"); a corpus of
another kind moves where the right-versus-wrong line falls. The data set's questions are split into
a calibration and a test half (:func:`~knowledge.evaluation.calibration.halves`); every candidate
threshold answers the calibration half over the same retrieved chunks; the chosen one is the
largest whose share of withheld answerable questions stays within the bound (a higher threshold
withholds more answers and keeps fewer wrong citations). Its figures on the test half, which took
no part in choosing it, are what to expect in production; the current setting's are shown beside
them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from core.settings import Settings
from knowledge.answering import AnswerPipeline
from knowledge.evaluation.answer_eval import EvalQuestions, RunScores, select_questions
from knowledge.evaluation.calibration import RecordedSearch, halves
from knowledge.evaluation.dataset import EvalDataset
from knowledge.evaluation.retrieval_eval import index_dataset
from knowledge.generation.factory import extractive_generator

REPORTED = ("citation_precision", "abstention_rate", "unanswerable_abstention_rate", "rouge_l")
# 0.30, 0.32 ... 0.80: on squad-dev (seed 7), steps of 0.05 stopped at 0.65 with 1.1 points of the
# abstention bound unused (0.66 and 0.68 still kept within it; README, "Answers")
DEFAULT_THRESHOLDS = tuple(round(0.3 + 0.02 * step, 2) for step in range(26))


def score_extractive(settings: Settings, search: RecordedSearch, questions: EvalQuestions,
                     doc_ids: Mapping[str, str]) -> dict[str, float | None]:
    """The :data:`REPORTED` figures of the extractive generator answering ``questions`` under
    ``settings`` (the likelihood gate runs before any generator, so it decides the same for all)."""
    generator = extractive_generator(settings)
    pipeline = AnswerPipeline(settings, search, generator, extractive=generator)
    scores = RunScores()
    for question in questions.answerable:
        scores.add_answerable(question, pipeline.answer(question.question), dict(doc_ids))
    for question in questions.unanswerable:
        scores.add_unanswerable(pipeline.answer(question.question))
    metrics = scores.as_dict()
    return {name: round(metrics[name], 3) if metrics[name] is not None else None for name in REPORTED}


def choose_threshold(scored: Sequence[tuple[float, Mapping[str, float | None]]], max_abstention: float) -> float | None:
    """The largest threshold that, like every smaller one, withholds at most ``max_abstention`` of
    the answerable questions (a noisy dip past the first one over the bound does not count); None
    when even the smallest withholds more, or there are no answerable questions."""
    chosen = None
    for threshold, figures in sorted(scored, key=lambda item: item[0]):
        rate = figures["abstention_rate"]
        if rate is None or rate > max_abstention:
            break
        chosen = threshold
    return chosen


def with_answer_settings(settings: Settings, updates: Mapping[str, object]) -> Settings:
    """``settings`` with some of its ``answer`` settings replaced (a calibration grid point)."""
    return settings.model_copy(update={"answer": settings.answer.model_copy(update=dict(updates))})


@dataclass(frozen=True)
class RecordedHalves:
    """A data set indexed once, each query retrieved once, and its questions split in two."""

    search: RecordedSearch
    doc_ids: dict[str, str]
    """chunk id -> the data set's document id (what citation precision compares with gold ids)"""
    calibration: EvalQuestions
    test: EvalQuestions


def recorded_halves(settings: Settings, dataset: EvalDataset, *, limit: int | None, holdout: float, seed: int,
                    progress_bar: bool = True) -> RecordedHalves:
    questions = select_questions(dataset, limit=limit, holdout=holdout, seed=seed)
    store = index_dataset(settings, questions.dataset, progress_bar=progress_bar, answer_vectors=True)
    search = RecordedSearch(settings, store)
    search.warm_up()
    doc_ids = {doc.id: str(doc.meta.get("doc_id")) for doc in store.filter_documents()}
    calibration, test = halves(questions)
    return RecordedHalves(search, doc_ids, calibration, test)


def calibrate_answer_threshold(settings: Settings, dataset: EvalDataset, *, limit: int | None, holdout: float,
                               seed: int, thresholds: Sequence[float], max_abstention: float,
                               progress_bar: bool = True) -> dict[str, Any]:
    """Index ``dataset``'s corpus, score each threshold on the calibration half, choose one
    (:func:`choose_threshold`) and score it and the current setting on the test half."""
    run = recorded_halves(settings, dataset, limit=limit, holdout=holdout, seed=seed, progress_bar=progress_bar)
    calibration, test = run.calibration, run.test

    def at(threshold: float) -> Settings:
        return with_answer_settings(settings, {"min_answer_probability": threshold})

    grid = [(threshold, score_extractive(at(threshold), run.search, calibration, run.doc_ids))
            for threshold in tqdm(sorted(thresholds), desc="thresholds", unit="threshold", disable=not progress_bar,
                                  file=sys.stderr)]
    chosen = choose_threshold(grid, max_abstention)
    current = settings.answer.min_answer_probability
    return {
        "dataset": dataset.name, "seed": seed, "holdout": holdout, "max_abstention": max_abstention,
        "n_calibration": {"answerable": len(calibration.answerable), "unanswerable": len(calibration.unanswerable)},
        "n_test": {"answerable": len(test.answerable), "unanswerable": len(test.unanswerable)},
        "calibration": [{"min_answer_probability": threshold, **figures} for threshold, figures in grid],
        "chosen": chosen,
        "test_chosen": (score_extractive(at(chosen), run.search, test, run.doc_ids)
                        if chosen is not None else None),
        "current": current,
        "test_current": score_extractive(settings, run.search, test, run.doc_ids),
    }
