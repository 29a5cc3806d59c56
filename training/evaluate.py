"""The evaluation gate: the candidate adapter against the current one and the base model on the
held-out split, and a promotion decision with its reasons.

ROUGE-L F1 and SQuAD-style token F1 come from ``core.text_metrics`` (shared with the answer
evaluation; training may import only core), and
citation F1 between the ``[n]`` markers of the answer and of the reference (the sources are numbered
the same way in both, so the marker says which source was used).

The decision never promotes a regression: the candidate must beat the current adapter (or the base
model when nothing is promoted yet) on the primary metric by ``margin``, must not fall below the
base model on it, and must not lose more than ``tolerance`` on any other metric.

Usage::

    report = evaluate_models(test_examples, {"candidate": gen_a, "current": gen_b, "base": gen_c})
    decision = decide(report, GateConfig())
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.text_metrics import rouge_l, token_f1

METRICS = ("rouge_l", "token_f1", "citation_f1")
_MARKER = re.compile(r"\[(\d+)\]")

Generate = Callable[[list[dict[str, str]]], str]
"""The prompt messages (system, user) → the model's answer."""


def citation_f1(prediction: str, reference: str) -> float:
    predicted, gold = set(_MARKER.findall(prediction)), set(_MARKER.findall(reference))
    if not predicted and not gold:
        return 1.0
    common = len(predicted & gold)
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def score_answers(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean of each metric over the pairs."""
    if len(predictions) != len(references) or not references:
        raise ValueError("score_answers needs as many predictions as references, at least one")
    functions = {"rouge_l": rouge_l, "token_f1": token_f1, "citation_f1": citation_f1}
    return {name: sum(f(p, r) for p, r in zip(predictions, references, strict=True)) / len(references)
            for name, f in functions.items()}


@dataclass
class GateConfig:
    """When a candidate may replace the current adapter."""

    primary: str = field(default="rouge_l", metadata={"help": f"the metric that must improve: one of {METRICS}"})
    margin: float = field(default=0.01, metadata={"help": "how much the candidate must beat current on primary"})
    tolerance: float = field(default=0.02, metadata={"help": "how much any other metric may fall"})
    min_examples: int = field(default=5, metadata={"help": "fewer held-out examples than this: no decision"})

    def __post_init__(self) -> None:
        if self.primary not in METRICS:
            raise ValueError(f"primary must be one of {METRICS}, not {self.primary!r}")
        if self.margin < 0 or self.tolerance < 0:
            raise ValueError("margin and tolerance must be >= 0")
        if self.min_examples < 1:
            raise ValueError("min_examples must be >= 1")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str]
    compared_with: str


def evaluate_models(examples: list[dict[str, Any]], generators: dict[str, Generate]) -> dict[str, Any]:
    """Each model's answers to the examples' prompts, scored against the examples' targets.

    :returns: ``{"n_examples", "results": {name: metrics}, "answers": {name: [str]}}``
    """
    references = [example["messages"][-1]["content"] for example in examples]
    results, answers = {}, {}
    for name, generate in generators.items():
        predictions = [generate(example["messages"][:-1]) for example in examples]
        answers[name] = predictions
        results[name] = score_answers(predictions, references) if examples else {}
    return {"n_examples": len(examples), "results": results, "answers": answers}


def decide(results: dict[str, dict[str, float]], n_examples: int, gate: GateConfig) -> Decision:
    """Whether ``results["candidate"]`` may be promoted over ``results["current"]`` (or over
    ``results["base"]`` when there is no current adapter), with the reasons either way."""
    candidate = results["candidate"]
    compared_with = "current" if "current" in results else "base"
    reference = results[compared_with]
    if n_examples < gate.min_examples:
        return Decision(False, [f"only {n_examples} held-out examples (need {gate.min_examples}); no decision"],
                        compared_with)
    reasons: list[str] = []
    blocking = False
    gain = candidate[gate.primary] - reference[gate.primary]
    if gain >= gate.margin and gain > 0:
        reasons.append(f"{gate.primary} {candidate[gate.primary]:.4f} beats {compared_with} "
                       f"{reference[gate.primary]:.4f} by {gain:+.4f} (margin {gate.margin})")
    else:
        blocking = True
        reasons.append(f"{gate.primary} {candidate[gate.primary]:.4f} does not beat {compared_with} "
                       f"{reference[gate.primary]:.4f} by the margin {gate.margin} ({gain:+.4f})")
    if compared_with == "current" and "base" in results and candidate[gate.primary] < results["base"][gate.primary]:
        blocking = True
        reasons.append(f"{gate.primary} {candidate[gate.primary]:.4f} is below the base model's "
                       f"{results['base'][gate.primary]:.4f}")
    for metric in METRICS:
        if metric == gate.primary:
            continue
        drop = reference[metric] - candidate[metric]
        if drop > gate.tolerance:
            blocking = True
            reasons.append(f"{metric} falls by {drop:.4f} against {compared_with} (tolerance {gate.tolerance})")
    return Decision(not blocking, reasons, compared_with)
