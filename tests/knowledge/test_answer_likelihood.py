"""The answer likelihood model: fitting, its file, and what the shipped weights say."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from core.settings import Settings
from knowledge.answer_likelihood import (
    DEFAULT_MODEL_PATH,
    FEATURES,
    AnswerEvidence,
    AnswerLikelihood,
    ModelFileError,
    answer_likelihood,
)
from knowledge.generation.extractive import Assessment


def evidence(*, confidence: float = 2.0, lead: float = 0.5, focus: float = 0.1, meaning: float = 0.6,
             relevance: float = 0.6, rank: int = 1) -> AnswerEvidence:
    return AnswerEvidence(Assessment(confidence=confidence, unmatched_focus=focus, words=0.6, meaning=meaning,
                                     section_relevance=relevance, lead=lead, source_rank=rank, candidates=12),
                          retrieval_support=relevance, question_coverage=0.6)


def synthetic(n: int = 400, seed: int = 3) -> tuple[list[AnswerEvidence], list[bool]]:
    """Answers are right when they lead the other sources clearly and miss nothing of the question."""
    rng = random.Random(seed)
    pieces, labels = [], []
    for _ in range(n):
        lead, focus = rng.uniform(0, 1), rng.uniform(0, 0.5)
        pieces.append(evidence(confidence=rng.uniform(1, 3), lead=lead, focus=focus, meaning=rng.uniform(0.2, 0.8)))
        labels.append(lead - focus + rng.gauss(0, 0.15) > 0.25)
    return pieces, labels


def test_features_follow_the_declared_order() -> None:
    values = evidence(confidence=2.5, lead=0.4, focus=0.3, rank=2).features()
    assert len(values) == len(FEATURES)
    named = dict(zip(FEATURES, values, strict=True))
    assert named["confidence"] == 2.5 and named["lead"] == 0.4 and named["unmatched_focus"] == 0.3
    assert named["inverse_rank"] == 0.5
    assert AnswerEvidence(Assessment(0.0, 0.0), 0.0, 0.0).features()[FEATURES.index("inverse_rank")] == 0.0


def test_fit_learns_the_direction_of_each_signal_and_separates_held_out_answers() -> None:
    pieces, labels = synthetic()
    model = AnswerLikelihood.fit(pieces, labels)
    weights = dict(zip(FEATURES, model.weights, strict=True))
    assert weights["lead"] > 1.0 and weights["unmatched_focus"] < -1.0
    assert abs(weights["confidence"]) < weights["lead"] / 3  # unrelated to the label here
    test, truth = synthetic(seed=11)
    correct = sum((model.probability(e) >= 0.5) == t for e, t in zip(test, truth, strict=True))
    assert correct / len(test) > 0.85
    assert model.probability(evidence(lead=0.9, focus=0.0)) > 0.9 > 0.1 > model.probability(evidence(lead=0.0, focus=0.5))


def test_sample_weights_shift_the_fit_toward_the_weighted_questions() -> None:
    pieces, labels = synthetic()
    # the same questions, but the wrong answers count ten times as much: every probability drops
    heavy_wrong = AnswerLikelihood.fit(pieces, labels, [1.0 if right else 10.0 for right in labels])
    plain = AnswerLikelihood.fit(pieces, labels)
    probe = evidence(lead=0.4, focus=0.1)
    assert heavy_wrong.probability(probe) < plain.probability(probe)


def test_fit_refuses_mismatched_labels() -> None:
    with pytest.raises(ValueError, match="one label per piece of evidence"):
        AnswerLikelihood.fit([evidence()], [True, False])
    with pytest.raises(ValueError):
        AnswerLikelihood.fit([], [])


def test_a_saved_model_loads_back_with_the_same_probabilities(tmp_path: Path) -> None:
    pieces, labels = synthetic()
    model = AnswerLikelihood.fit(pieces, labels, trained_on="synthetic")
    path = tmp_path / "model.json"
    model.save(path)
    loaded = AnswerLikelihood.load(path)
    assert loaded == model and loaded.trained_on == "synthetic"
    assert [loaded.probability(e) for e in pieces[:20]] == [model.probability(e) for e in pieces[:20]]


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not an answer likelihood model"),
    (json.dumps({"features": ["confidence"], "mean": [0], "scale": [1], "weights": [1], "intercept": 0}),
     "fitted on features"),
    (json.dumps({"features": list(FEATURES), "mean": [0.0] * len(FEATURES)}), "not an answer likelihood model"),
    (json.dumps({"features": list(FEATURES), "mean": [0.0] * len(FEATURES), "scale": [0.0] * len(FEATURES),
                 "weights": [1.0] * len(FEATURES), "intercept": 0.0}), "scale must be positive"),
])
def test_a_bad_model_file_is_refused_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "model.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelFileError, match=message) as raised:
        AnswerLikelihood.load(path)
    assert "scale must be positive" in message or str(path) in str(raised.value)


def test_the_shipped_model_trusts_a_clear_lead_and_distrusts_a_missing_focus() -> None:
    model = AnswerLikelihood.load(DEFAULT_MODEL_PATH)
    clear = model.probability(evidence(confidence=2.4, lead=0.8, focus=0.05, meaning=0.7, relevance=0.7))
    contested = model.probability(evidence(confidence=2.4, lead=0.02, focus=0.05, meaning=0.7, relevance=0.7))
    off_focus = model.probability(evidence(confidence=2.4, lead=0.8, focus=0.45, meaning=0.7, relevance=0.7))
    assert clear > 0.7
    assert contested < clear and off_focus < clear
    assert model.trained_on  # says what it was fitted on


def test_settings_choose_the_model(tmp_path: Path) -> None:
    assert answer_likelihood(Settings(answer={"min_answer_probability": 0.0})) is None
    assert answer_likelihood(Settings()) == AnswerLikelihood.load(DEFAULT_MODEL_PATH)
    pieces, labels = synthetic()
    own = tmp_path / "own.json"
    AnswerLikelihood.fit(pieces, labels).save(own)
    assert answer_likelihood(Settings(answer={"likelihood_model": str(own)})) == AnswerLikelihood.load(own)
    with pytest.raises(ModelFileError):
        answer_likelihood(Settings(answer={"likelihood_model": str(tmp_path / "missing.json")}))
