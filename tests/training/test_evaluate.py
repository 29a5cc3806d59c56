"""The evaluation gate: metrics, and a decision that never promotes a regression."""

from __future__ import annotations

import pytest

from training.evaluate import GateConfig, citation_f1, decide, evaluate_models, rouge_l, score_answers, token_f1

EXAMPLES = [{"messages": [{"role": "user", "content": f"question {i}"},
                          {"role": "assistant", "content": f"Hold the reset button for {i} seconds [1]."}]}
            for i in range(6)]
GATE = GateConfig(min_examples=5)


def test_metrics() -> None:
    assert rouge_l("Hold the button [1].", "hold the button") == 1.0
    assert token_f1("press reset", "hold reset") == 0.5
    assert citation_f1("a [1] b [2]", "a [1]") == pytest.approx(2 / 3)
    assert citation_f1("no markers", "none either") == 1.0
    assert score_answers(["x"], ["x [1]"])["citation_f1"] == 0.0


def answers(text: str):  # type: ignore[no-untyped-def]
    return lambda messages: text.format(n=messages[-1]["content"].split()[-1])


def test_a_better_candidate_is_promoted() -> None:
    report = evaluate_models(EXAMPLES, {"candidate": answers("Hold the reset button for {n} seconds [1]."),
                                        "current": answers("Press reset [1]."), "base": answers("I am not sure.")})
    decision = decide(report["results"], report["n_examples"], GATE)
    assert decision.promote and decision.compared_with == "current"
    assert "beats current" in decision.reasons[0]


def test_a_worse_candidate_is_refused() -> None:
    report = evaluate_models(EXAMPLES, {"candidate": answers("Unplug it."), "current": answers("Hold reset {n} [1]."),
                                        "base": answers("Unplug it.")})
    decision = decide(report["results"], report["n_examples"], GATE)
    assert not decision.promote and "does not beat current" in decision.reasons[0]


def test_a_tie_with_itself_is_refused() -> None:
    same = answers("Hold reset for {n} seconds [1].")
    report = evaluate_models(EXAMPLES, {"candidate": same, "base": same})
    decision = decide(report["results"], report["n_examples"], GATE)
    assert not decision.promote and decision.compared_with == "base"


def test_a_gain_on_the_primary_metric_does_not_excuse_a_regression_elsewhere() -> None:
    results = {"candidate": {"rouge_l": 0.60, "token_f1": 0.60, "citation_f1": 0.50},
               "current": {"rouge_l": 0.50, "token_f1": 0.55, "citation_f1": 0.90},
               "base": {"rouge_l": 0.30, "token_f1": 0.30, "citation_f1": 0.20}}
    decision = decide(results, 100, GATE)
    assert not decision.promote and any("citation_f1 falls" in r for r in decision.reasons)


def test_below_the_base_model_is_refused_even_when_beating_current() -> None:
    results = {"candidate": {"rouge_l": 0.40, "token_f1": 0.5, "citation_f1": 0.5},
               "current": {"rouge_l": 0.30, "token_f1": 0.5, "citation_f1": 0.5},
               "base": {"rouge_l": 0.45, "token_f1": 0.5, "citation_f1": 0.5}}
    decision = decide(results, 100, GATE)
    assert not decision.promote and any("below the base" in r for r in decision.reasons)


def test_too_few_examples_is_no_decision() -> None:
    results = {"candidate": {"rouge_l": 1.0, "token_f1": 1.0, "citation_f1": 1.0},
               "base": {"rouge_l": 0.0, "token_f1": 0.0, "citation_f1": 0.0}}
    assert not decide(results, 2, GATE).promote


def test_gate_config_validation() -> None:
    with pytest.raises(ValueError, match="primary"):
        GateConfig(primary="bleu")
    with pytest.raises(ValueError, match="margin"):
        GateConfig(margin=-1)
