"""The evaluation gate: the candidate adapter against the current one and the base model on two
sets, the held-out split of the dataset and the fixed golden set (:mod:`training.golden_set`),
and a promotion decision with its reasons.

Metrics, per model and per set (each in [0, 1], higher is better):

- ``rouge_l``, ``token_f1``: overlap with the reference answer (``core.text_metrics``, shared with
  the answer evaluation; citation markers are ignored).
- ``citation_precision``: the share of the answers' ``[n]`` markers whose sentence source ``n``
  supports (counted over all the markers of the set; 0 when no answer cites).
- ``grounded_rate``: the share of the answers that do not abstain in which every citing sentence is
  supported by each source it cites and every claim cites a source (0 when every answer abstains).
- ``abstention_correctness``: the share of examples where the model abstained exactly when the
  reference abstains (``core.abstention.is_abstention`` on both).

Whether a sentence is supported by a source is the answer pipeline's own check, which lives in
``knowledge`` (training may not import it): the caller passes it in as a :data:`CitationJudge`
(``jobs.training_inputs.citation_judge``), which reads the sources from the example's prompt.

The decision never promotes a regression: the candidate must beat the current adapter (or the base
model when nothing is promoted yet) on the primary metric of the held-out split by ``margin``, must
not fall below the base model on it, and must not lose more than ``tolerance`` on any metric of
either set. Every reason names the set and the metric.

Usage::

    report = run_gate({"held_out": test_examples, "golden": load_golden_set()},
                      {"candidate": gen_a, "current": gen_b, "base": gen_c}, judge=judge, gate=GateConfig())
    report.decision.promote, report.decision.reasons
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.abstention import is_abstention
from core.text_metrics import rouge_l, token_f1

METRICS = ("rouge_l", "token_f1", "citation_precision", "grounded_rate", "abstention_correctness")
HELD_OUT, GOLDEN = "held_out", "golden"
SETS = (HELD_OUT, GOLDEN)

Generate = Callable[[list[dict[str, str]]], str]
"""The prompt messages (system, user) → the model's answer."""


@dataclass(frozen=True)
class SentenceCitations:
    """One sentence of an answer, as the citation judge saw it."""

    cited: tuple[int, ...]
    """the source numbers its ``[n]`` markers name"""
    supported: tuple[int, ...]
    """those of ``cited`` that are sources of the prompt and support the sentence"""
    claim: bool
    """whether it states something to check (enough content words), as opposed to "Sure!" """


CitationJudge = Callable[[list[dict[str, str]], str], list[SentenceCitations]]
"""(the prompt messages, an answer to them) → the answer's sentences, each cited source checked
against that source's text in the prompt."""


@dataclass(frozen=True)
class AnswerScore:
    """One answer against its reference."""

    rouge_l: float
    token_f1: float
    abstained: bool
    abstention_correct: bool
    cited: int
    """``[n]`` markers (one per source per sentence)"""
    supported: int
    """of those, the markers whose source supports their sentence"""
    grounded: bool


def is_grounded(sentences: list[SentenceCitations]) -> bool:
    """At least one sentence cites, every cited source supports its sentence, and no claim is left
    without a citation."""
    citing = [s for s in sentences if s.cited]
    return (bool(citing) and all(set(s.supported) == set(s.cited) for s in citing)
            and all(s.cited for s in sentences if s.claim))


def score_answer(prediction: str, reference: str, sentences: list[SentenceCitations]) -> AnswerScore:
    """:param sentences: the judge's view of ``prediction``."""
    abstained = is_abstention(prediction)
    return AnswerScore(rouge_l=rouge_l(prediction, reference), token_f1=token_f1(prediction, reference),
                       abstained=abstained, abstention_correct=abstained == is_abstention(reference),
                       cited=sum(len(s.cited) for s in sentences), supported=sum(len(s.supported) for s in sentences),
                       grounded=not abstained and is_grounded(sentences))


def aggregate(scores: list[AnswerScore]) -> dict[str, float]:
    """The metrics of a set from its answers' scores (see the module docstring)."""
    if not scores:
        raise ValueError("aggregate needs at least one answer")
    n = len(scores)
    cited = sum(s.cited for s in scores)
    answered = [s for s in scores if not s.abstained]
    return {"rouge_l": sum(s.rouge_l for s in scores) / n,
            "token_f1": sum(s.token_f1 for s in scores) / n,
            "citation_precision": sum(s.supported for s in scores) / cited if cited else 0.0,
            "grounded_rate": sum(s.grounded for s in answered) / len(answered) if answered else 0.0,
            "abstention_correctness": sum(s.abstention_correct for s in scores) / n}


def score_answers(examples: list[dict[str, Any]], predictions: list[str], judge: CitationJudge) -> dict[str, float]:
    """The metrics of ``predictions`` (one per example) against the examples' targets."""
    if len(predictions) != len(examples) or not examples:
        raise ValueError("score_answers needs as many predictions as examples, at least one")
    return aggregate([score_answer(prediction, example["messages"][-1]["content"],
                                   judge(example["messages"][:-1], prediction))
                      for example, prediction in zip(examples, predictions, strict=True)])


@dataclass
class GateConfig:
    """When a candidate may replace the current adapter."""

    primary: str = field(default="rouge_l", metadata={
        "help": f"the metric that must improve on the held-out split: one of {METRICS}"})
    margin: float = field(default=0.01, metadata={
        "help": "how much the candidate must beat current (or base) on the primary metric of the held-out split"})
    tolerance: float = field(default=0.02, metadata={
        "help": "how much any metric of either set (held-out, golden) may fall against current (or base)"})
    min_examples: int = field(default=5, metadata={"help": "fewer held-out examples than this: no decision"})

    def __post_init__(self) -> None:
        if self.primary not in METRICS:
            raise ValueError(f"primary must be one of {METRICS}, not {self.primary!r}")
        if self.margin < 0 or self.tolerance < 0:
            raise ValueError(f"margin and tolerance must be >= 0, not {self.margin} and {self.tolerance}")
        if self.min_examples < 1:
            raise ValueError(f"min_examples must be >= 1, not {self.min_examples}")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str]
    compared_with: str


def evaluate_models(examples: list[dict[str, Any]], generators: dict[str, Generate], *,
                    judge: CitationJudge) -> dict[str, Any]:
    """Each model's answers to the examples' prompts, scored against the examples' targets.

    :returns: ``{"n_examples", "results": {name: metrics}, "answers": {name: [str]}}``; with no
        examples, each model's metrics are empty.
    """
    results, answers = {}, {}
    for name, generate in generators.items():
        predictions = [generate(example["messages"][:-1]) for example in examples]
        answers[name] = predictions
        results[name] = score_answers(examples, predictions, judge) if examples else {}
    return {"n_examples": len(examples), "results": results, "answers": answers}


def decide(reports: dict[str, dict[str, Any]], gate: GateConfig) -> Decision:
    """Whether the candidate may be promoted over ``current`` (or over ``base`` when there is no
    current adapter), with the reasons either way.

    :param reports: per set (``held_out``, ``golden``), ``{"n_examples", "results": {model: metrics}}``.
    """
    held_out, golden = reports.get(HELD_OUT), reports.get(GOLDEN)
    models = held_out["results"] if held_out else {}
    compared_with = "current" if "current" in models else "base"
    n_held_out = held_out["n_examples"] if held_out else 0
    if n_held_out < gate.min_examples:
        return Decision(False, [f"{HELD_OUT}: only {n_held_out} examples (need {gate.min_examples}); no decision"],
                        compared_with)
    if not golden or not golden["n_examples"]:
        return Decision(False, [f"{GOLDEN}: the golden set was not evaluated; no decision"], compared_with)
    reasons: list[str] = []
    blocking = False
    candidate, reference = models["candidate"], models[compared_with]
    gain = candidate[gate.primary] - reference[gate.primary]
    if gain >= gate.margin and gain > 0:
        reasons.append(f"{HELD_OUT}: {gate.primary} {candidate[gate.primary]:.4f} beats {compared_with} "
                       f"{reference[gate.primary]:.4f} by {gain:+.4f} (margin {gate.margin})")
    else:
        blocking = True
        reasons.append(f"{HELD_OUT}: {gate.primary} {candidate[gate.primary]:.4f} does not beat {compared_with} "
                       f"{reference[gate.primary]:.4f} by the margin {gate.margin} ({gain:+.4f})")
    if compared_with == "current" and "base" in models and candidate[gate.primary] < models["base"][gate.primary]:
        blocking = True
        reasons.append(f"{HELD_OUT}: {gate.primary} {candidate[gate.primary]:.4f} is below the base model's "
                       f"{models['base'][gate.primary]:.4f}")
    regressions = 0
    for name in SETS:
        results = reports[name]["results"]
        for metric in METRICS:
            if name == HELD_OUT and metric == gate.primary:
                continue
            before, after = results[compared_with][metric], results["candidate"][metric]
            if before - after > gate.tolerance:
                regressions += 1
                reasons.append(f"{name}: {metric} falls by {before - after:.4f} against {compared_with} "
                               f"({before:.4f} -> {after:.4f}; tolerance {gate.tolerance})")
    if regressions:
        blocking = True
    else:
        reasons.append(f"{HELD_OUT} and {GOLDEN}: no metric falls by more than {gate.tolerance} against {compared_with}")
    return Decision(not blocking, reasons, compared_with)


@dataclass(frozen=True)
class GateReport:
    sets: dict[str, dict[str, Any]]
    """per set: ``{"n_examples", "results", "answers"}`` (see :func:`evaluate_models`)"""
    decision: Decision

    def summary(self) -> dict[str, Any]:
        """What to show and record: the decision and each set's metrics (without the answers)."""
        return {"promote": self.decision.promote, "reasons": self.decision.reasons,
                "compared_with": self.decision.compared_with,
                "sets": {name: {"n_examples": report["n_examples"], "results": report["results"]}
                         for name, report in self.sets.items()}}

    def answers(self) -> dict[str, dict[str, list[str]]]:
        return {name: report["answers"] for name, report in self.sets.items()}


def run_gate(sets: dict[str, list[dict[str, Any]]], generators: dict[str, Generate], *, judge: CitationJudge,
             gate: GateConfig) -> GateReport:
    """Evaluate every model on every set, then :func:`decide`.

    :param sets: ``held_out`` (the dataset's test split) and ``golden`` (:func:`training.golden_set.load_golden_set`).
    :param generators: ``candidate``, ``base`` and, when one is promoted, ``current``.
    """
    unknown = set(sets) - set(SETS)
    if unknown:
        raise ValueError(f"unknown evaluation sets {sorted(unknown)}; expected {SETS}")
    if "candidate" not in generators or "base" not in generators:
        raise ValueError(f"run_gate needs a 'candidate' and a 'base' generator, not {sorted(generators)}")
    reports = {name: evaluate_models(examples, generators, judge=judge) for name, examples in sets.items()}
    return GateReport(sets=reports, decision=decide(reports, gate))
