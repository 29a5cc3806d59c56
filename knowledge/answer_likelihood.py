"""How likely an answer is to quote the right source: a logistic model over the evidence the answer
pipeline already has before it generates anything (retrieval cosines, how well the best sentence
matches the question in words and in meaning, how far it leads the other sources' sentences, and
whether its section covers the question's focus).

Each of those signals alone separates right from wrong answers poorly; thresholds on two of them
(confidence and unmatched focus) said "I don't know" to 77 % of squad-dev's unanswerable questions.
Weighed together they reach 83 % with more citations right (README, "Answers"). The weights ship in
``answer_likelihood.json`` and are refitted with ``benchmarks/fit_answer_likelihood.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import Settings
from knowledge.generation.extractive import Assessment

DEFAULT_MODEL_PATH = Path(__file__).with_name("answer_likelihood.json")

FEATURES = ("confidence", "words", "meaning", "section_relevance", "lead", "unmatched_focus",
            "retrieval_support", "question_coverage", "inverse_rank", "log_candidates")


@dataclass(frozen=True)
class AnswerEvidence:
    """What is known about a question's best answer sentence before generating (see the module)."""

    assessment: Assessment
    retrieval_support: float
    question_coverage: float

    def features(self) -> list[float]:
        """The values of :data:`FEATURES`, in order."""
        a = self.assessment
        return [a.confidence, a.words, a.meaning, a.section_relevance, a.lead, a.unmatched_focus,
                self.retrieval_support, self.question_coverage,
                1.0 / a.source_rank if a.source_rank else 0.0, math.log(max(a.candidates, 1))]


class ModelFileError(ValueError):
    """The model file is unreadable or was fitted on other features."""


@dataclass(frozen=True)
class AnswerLikelihood:
    """``probability(evidence)``: sigmoid(intercept + weights . (features - mean) / scale)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    trained_on: str = ""

    def __post_init__(self) -> None:
        if not len(self.mean) == len(self.scale) == len(self.weights) == len(FEATURES):
            raise ModelFileError(f"the model needs {len(FEATURES)} values per vector ({', '.join(FEATURES)})")
        if any(s <= 0 for s in self.scale):
            raise ModelFileError("every feature scale must be positive")

    def probability(self, evidence: AnswerEvidence) -> float:
        standard = (np.asarray(evidence.features()) - np.asarray(self.mean)) / np.asarray(self.scale)
        return float(1.0 / (1.0 + math.exp(-(self.intercept + float(standard @ np.asarray(self.weights))))))

    @classmethod
    def fit(cls, evidence: Sequence[AnswerEvidence], right: Sequence[bool], sample_weights: Sequence[float] | None = None,
            *, l2: float = 1.0, trained_on: str = "") -> AnswerLikelihood:
        """Weighted L2-regularised logistic regression (Newton's method) on standardised features;
        ``right[i]``: the answer to question ``i`` would cite a gold document."""
        if len(evidence) != len(right) or not evidence:
            raise ValueError("fit needs one label per piece of evidence, and at least one")
        x = np.asarray([e.features() for e in evidence], dtype=float)
        y = np.asarray(right, dtype=float)
        w = np.ones(len(y)) if sample_weights is None else np.asarray(sample_weights, dtype=float)
        w = w * len(w) / w.sum()
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale < 1e-9] = 1.0
        design = np.hstack([np.ones((len(y), 1)), (x - mean) / scale])
        penalty = np.eye(design.shape[1]) * l2
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        beta = np.zeros(design.shape[1])
        for _ in range(50):
            p = 1.0 / (1.0 + np.exp(-(design @ beta)))
            gradient = design.T @ (w * (p - y)) + penalty @ beta
            hessian = (design * (w * p * (1 - p))[:, None]).T @ design + penalty
            step = np.linalg.solve(hessian, gradient)
            beta -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(mean=tuple(mean.tolist()), scale=tuple(scale.tolist()), weights=tuple(beta[1:].tolist()),
                   intercept=float(beta[0]), trained_on=trained_on)

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURES), **asdict(self)}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL_PATH) -> AnswerLikelihood:
        """:raises ModelFileError: unreadable, or fitted on other features than :data:`FEATURES`."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("features") != list(FEATURES):
                raise ModelFileError(f"{path}: fitted on features {data.get('features')}, this version uses "
                                     f"{list(FEATURES)}; refit it with benchmarks/fit_answer_likelihood.py")
            return cls(mean=tuple(data["mean"]), scale=tuple(data["scale"]), weights=tuple(data["weights"]),
                       intercept=float(data["intercept"]), trained_on=str(data.get("trained_on", "")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{path}: not an answer likelihood model ({exc})") from exc


def answer_likelihood(settings: Settings) -> AnswerLikelihood | None:
    """The model of ``answer.likelihood_model`` (the shipped one when empty), or ``None`` when
    ``answer.min_answer_probability`` is 0.

    :raises ModelFileError: the file is unreadable or was fitted on other features.
    """
    if not settings.answer.min_answer_probability:
        return None
    return _load(str(settings.answer.likelihood_model or DEFAULT_MODEL_PATH))


@lru_cache(maxsize=4)
def _load(path: str) -> AnswerLikelihood:
    return AnswerLikelihood.load(Path(path))
