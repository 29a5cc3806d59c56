"""Calibration and test halves of an answer evaluation, so that thresholds are chosen on one half and
reported on the other.

Questions are split by ``group`` (paraphrases of one need stay together, otherwise a threshold
would be tuned on a paraphrase of a test question) and, without a group, by id; the split is a hash,
so it is the same in every process and does not depend on the order of the file.
"""

from __future__ import annotations

import zlib
from typing import Any

from haystack import Document

from knowledge.evaluation.answer_eval import EvalQuestions
from knowledge.evaluation.dataset import Question
from knowledge.retrieval import KnowledgeSearch


def is_calibration(question: Question) -> bool:
    """Whether ``question`` belongs to the calibration half (about half of the groups)."""
    key = question.group or question.id
    return zlib.crc32(key.encode("utf-8")) % 2 == 0


def halves(questions: EvalQuestions) -> tuple[EvalQuestions, EvalQuestions]:
    """(calibration, test): the answerable and the unanswerable questions each split the same way;
    both keep the whole index."""

    def part(calibration: bool) -> EvalQuestions:
        return EvalQuestions(
            answerable=[q for q in questions.answerable if is_calibration(q) == calibration],
            unanswerable=[q for q in questions.unanswerable if is_calibration(q) == calibration],
            dataset=questions.dataset,
        )

    return part(True), part(False)


class RecordedSearch(KnowledgeSearch):
    """A :class:`KnowledgeSearch` that retrieves each query once: a threshold grid then re-runs only
    the answer step, over exactly the same chunks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recorded: dict[tuple[str, int | None, str], list[Document]] = {}

    def search(self, query: str, *, top_k: int | None = None, filters: dict[str, Any] | None = None) -> list[Document]:
        key = (query, top_k, repr(filters))
        if key not in self._recorded:
            self._recorded[key] = super().search(query, top_k=top_k, filters=filters)
        return list(self._recorded[key])
