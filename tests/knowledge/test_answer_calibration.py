"""The calibration/test split of the answer evaluation, and the choice of a threshold on it."""

from __future__ import annotations

from itertools import pairwise

from knowledge.evaluation.answer_eval import EvalQuestions
from knowledge.evaluation.calibration import halves, is_calibration
from knowledge.evaluation.dataset import EvalDataset, Question
from knowledge.evaluation.threshold_calibration import DEFAULT_THRESHOLDS, choose_threshold


def _questions() -> EvalQuestions:
    answerable = [
        Question(id=f"q{n:03}", question=f"question {n}", answers=["x"], gold_ids=["d"], group=f"g{n // 3}")
        for n in range(60)
    ]
    unanswerable = [Question(id=f"u{n:03}", question=f"other {n}") for n in range(20)]
    return EvalQuestions(answerable, unanswerable, EvalDataset(name="t", corpus=[], questions=[]))


def test_halves_partition_both_kinds_of_question() -> None:
    questions = _questions()
    calibration, test = halves(questions)
    assert sorted(q.id for q in calibration.answerable + test.answerable) == sorted(q.id for q in questions.answerable)
    assert not {q.id for q in calibration.unanswerable} & {q.id for q in test.unanswerable}
    assert len(calibration.unanswerable) + len(test.unanswerable) == 20
    for part in (calibration, test):  # neither half is empty or nearly so
        assert 10 <= len(part.answerable) <= 50 and 3 <= len(part.unanswerable) <= 17
        assert part.dataset is questions.dataset


def test_paraphrases_stay_on_one_side() -> None:
    calibration, test = halves(_questions())
    assert not {q.group for q in calibration.answerable} & {q.group for q in test.answerable}


def test_the_split_does_not_depend_on_the_order() -> None:
    questions = _questions()
    reversed_questions = EvalQuestions(questions.answerable[::-1], questions.unanswerable[::-1], questions.dataset)
    assert {q.id for q in halves(questions)[0].answerable} == {q.id for q in halves(reversed_questions)[0].answerable}
    assert is_calibration(Question(id="x", question="?", group="g1")) == is_calibration(
        Question(id="y", question="?", group="g1")
    )


def _figures(abstention: float | None) -> dict[str, float | None]:
    return {"citation_precision": 0.9, "abstention_rate": abstention, "unanswerable_abstention_rate": 0.8,
            "rouge_l": 0.2}


def test_the_chosen_threshold_is_the_largest_within_the_bound() -> None:
    scored = [(0.5, _figures(0.16)), (0.3, _figures(0.05)), (0.4, _figures(0.15)), (0.6, _figures(0.3))]
    assert choose_threshold(scored, 0.15) == 0.4
    assert choose_threshold(scored, 0.2) == 0.5
    assert choose_threshold(scored, 0.5) == 0.6


def test_a_noisy_dip_past_the_bound_is_not_chosen() -> None:
    scored = [(0.3, _figures(0.1)), (0.4, _figures(0.17)), (0.5, _figures(0.14))]
    assert choose_threshold(scored, 0.15) == 0.3


def test_no_threshold_when_even_the_smallest_withholds_too_much() -> None:
    assert choose_threshold([(0.3, _figures(0.2)), (0.4, _figures(0.3))], 0.15) is None
    assert choose_threshold([(0.3, _figures(None))], 0.15) is None  # no answerable questions
    assert choose_threshold([], 0.15) is None


def test_the_default_candidates_step_finely_enough_to_use_the_bound() -> None:
    assert DEFAULT_THRESHOLDS[0] == 0.3 and DEFAULT_THRESHOLDS[-1] == 0.8
    steps = {round(b - a, 2) for a, b in pairwise(DEFAULT_THRESHOLDS)}
    assert steps == {0.02}
