"""Answer metrics on cases small enough to work out by hand."""

from __future__ import annotations

import pytest

from knowledge.evaluation.answer_metrics import best_of, citation_precision, corpus_bleu, normalise, rouge_l, token_f1


def test_normalise_drops_case_punctuation_articles_and_markers() -> None:
    assert normalise("Hold THE button, then release an Amber light [1][2].") == [
        "hold", "button", "then", "release", "amber", "light"]


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        # articles removed: [cat sat on mat] vs [cat sat on hat]: 3 common, P = R = 3/4
        ("the cat sat on the mat", "a cat sat on a hat", 0.75),
        # 2 common of 5 predicted and 2 reference tokens: P = 2/5, R = 1, F1 = 2·0.4/1.4 = 4/7
        ("hold reset button ten seconds", "hold button", 4 / 7),
        # repeated tokens count once per match: P = 1/3, R = 1
        ("button button button", "button", 0.5),
        # order does not matter to token F1
        ("seconds ten", "ten seconds", 1.0),
        ("Hold the button [1].", "hold button", 1.0),
        ("red light", "blue screen", 0.0),
        ("", "", 1.0),
        ("", "hold button", 0.0),
        ("hold button", "", 0.0),
    ],
)
def test_token_f1(prediction: str, reference: str, expected: float) -> None:
    assert token_f1(prediction, reference) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        # [hold reset button for ten seconds] vs [press and hold button for ten seconds]:
        # LCS = hold button for ten seconds = 5; P = 5/6, R = 5/7, F1 = 10/13
        ("hold the reset button for ten seconds", "press and hold the button for ten seconds", 10 / 13),
        # order matters to ROUGE-L: LCS of [b a] and [a b] is 1
        ("seconds ten", "ten seconds", 0.5),
        ("Hold the button [1].", "hold button", 1.0),
        ("red light", "blue screen", 0.0),
        ("", "hold button", 0.0),
    ],
)
def test_rouge_l(prediction: str, reference: str, expected: float) -> None:
    assert rouge_l(prediction, reference) == pytest.approx(expected)


def test_best_of_takes_the_closest_reference() -> None:
    references = ["blue screen", "a cat sat on a hat", "hold button"]
    assert best_of("token_f1", "the cat sat on the mat", references) == pytest.approx(0.75)
    assert best_of("rouge_l", "seconds ten", ["ten seconds", "seconds"]) == pytest.approx(2 / 3)  # P = 1/2, R = 1
    assert best_of("token_f1", "anything", []) == 0.0


def test_bleu_of_identical_text_is_one() -> None:
    predictions = ["press and hold the reset button for ten seconds",
                   "the guest network uses the 2.4 GHz and 5 GHz bands only"]
    assert corpus_bleu(predictions, [[p] for p in predictions]) == pytest.approx(1.0)
    # Markers and case do not count against the prediction.
    assert corpus_bleu(["Press and hold the Reset button for ten seconds [1]."],
                       [["press and hold the reset button for ten seconds"]]) == pytest.approx(1.0)


def test_bleu_is_lower_for_a_different_answer_and_zero_without_predictions() -> None:
    references = [["press and hold the reset button for ten seconds"]]
    partial = corpus_bleu(["press and hold the power switch for two seconds"], references)
    unrelated = corpus_bleu(["descale the coffee machine every five hundred cups"], references)
    assert 0.0 <= unrelated < partial < 1.0
    assert corpus_bleu([], []) == 0.0


def test_bleu_uses_every_reference() -> None:
    # The prediction matches the second reference exactly; questions with fewer references repeat
    # their first one.
    prediction = ["press and hold the reset button for ten seconds", "descale every five hundred cups please"]
    references = [["hold it for a while", "press and hold the reset button for ten seconds"],
                  ["descale every five hundred cups please"]]
    assert corpus_bleu(prediction, references) == pytest.approx(1.0)


def test_citation_precision_counts() -> None:
    assert citation_precision(["manual-a", "manual-b", "manual-a", "faq"], {"manual-a", "faq"}) == (3, 4)
    assert citation_precision(["manual-b"], {"manual-a"}) == (0, 1)
    assert citation_precision([], {"manual-a"}) == (0, 0)
    assert citation_precision(["manual-a"], set()) == (0, 1)
