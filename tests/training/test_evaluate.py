"""The evaluation gate: the metrics on hand-made answers (abstentions included), and a decision over
the held-out split and the golden set that never promotes a regression. Models are scripted
callables and the citation judge a word-overlap stand-in (the real one is tested with the golden set)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from training.evaluate import (
    GOLDEN,
    HELD_OUT,
    METRICS,
    AnswerScore,
    GateConfig,
    GateReport,
    Generate,
    SentenceCitations,
    aggregate,
    decide,
    evaluate_models,
    is_grounded,
    run_gate,
    score_answer,
    score_answers,
)

GATE = GateConfig(min_examples=5)
SOURCES = {"reset": "Hold the reset button for 10 seconds until the light blinks.",
           "wifi": "The Wi-Fi password is printed on the label under the router."}


def example(question: str, sources: list[str], reference: str) -> dict[str, Any]:
    """Prompt format of these tests: ``[n] text`` lines, then the question."""
    numbered = "\n".join(f"[{n}] {SOURCES[s]}" for n, s in enumerate(sources, start=1))
    return {"messages": [{"role": "system", "content": "Answer from the sources; cite [n]."},
                         {"role": "user", "content": f"Sources:\n{numbered}\nQuestion: {question}"},
                         {"role": "assistant", "content": reference}]}


def judge(messages: list[dict[str, str]], answer: str) -> list[SentenceCitations]:
    """A sentence is supported by a source that holds all its words of four letters or more."""
    sources = dict(re.findall(r"^\[(\d+)\] (.*)$", messages[-1]["content"], re.MULTILINE))
    judged = []
    for sentence in re.split(r"(?<=[.!?])\s+", answer.strip()):
        cited = tuple(int(n) for n in re.findall(r"\[(\d+)\]", sentence))
        words = set(re.findall(r"[a-z0-9-]{4,}", re.sub(r"\[\d+\]", "", sentence.lower())))
        supported = tuple(n for n in cited if str(n) in sources and words <= set(re.findall(r"[a-z0-9-]+", sources[str(n)].lower())))
        judged.append(SentenceCitations(cited=cited, supported=supported, claim=len(words) >= 2))
    return judged


RESET = "Hold the reset button for 10 seconds [1]."
WIFI = "The password is printed on the label under the router [2]."
HELD = [example(f"How do I reset it? ({i})", ["reset", "wifi"], RESET) for i in range(6)]
GOLD = [*(example(f"Where is the Wi-Fi password? ({i})", ["reset", "wifi"], WIFI) for i in range(4)),
        *(example(f"Can I paint the router? ({i})", ["reset", "wifi"], "I don't know.") for i in range(2))]


def scripted(**by_topic: str) -> Generate:
    """Answers by the question's topic (``reset``, ``wifi``, ``paint``)."""
    def generate(messages: list[dict[str, str]]) -> str:
        question = messages[-1]["content"].rsplit("Question: ", 1)[1]
        topic = "reset" if "reset" in question else "wifi" if "Wi-Fi" in question else "paint"
        return by_topic[topic]
    return generate


GOOD = scripted(reset=RESET, wifi=WIFI, paint="I don't know.")


def gate(**generators: Generate) -> GateReport:
    return run_gate({HELD_OUT: HELD, GOLDEN: GOLD}, generators, judge=judge, gate=GATE)


# --- metrics ---------------------------------------------------------------------------------------

def test_answer_scores_with_abstentions() -> None:
    both_abstain = score_answer("I don't know.", "I don't know.", [])
    assert both_abstain.abstained and both_abstain.abstention_correct and not both_abstain.grounded
    should_abstain = score_answer(RESET, "I DON’T KNOW, let me hand you over.", judge(HELD[0]["messages"][:-1], RESET))
    assert not should_abstain.abstained and not should_abstain.abstention_correct and should_abstain.grounded
    should_answer = score_answer("I do not know.", RESET, [])
    assert should_answer.abstained and not should_answer.abstention_correct
    assert score_answer("Hold the button [1].", "hold the button", []).rouge_l == 1.0
    assert score_answer("press reset", "hold reset", []).token_f1 == 0.5


def test_grounded_needs_a_supported_citation_for_every_claim() -> None:
    ok, wrong = SentenceCitations((1,), (1,), True), SentenceCitations((2,), (), True)
    uncited_claim, small_talk = SentenceCitations((), (), True), SentenceCitations((), (), False)
    assert is_grounded([ok, small_talk])
    assert not is_grounded([ok, wrong]) and not is_grounded([ok, uncited_claim]) and not is_grounded([small_talk])
    assert not is_grounded([SentenceCitations((1, 2), (1,), True)])  # one of two cited sources does not support it


def test_set_metrics() -> None:
    def score(cited: int, supported: int, grounded: bool, abstained: bool = False, correct: bool = True) -> AnswerScore:
        return AnswerScore(0.5, 0.5, abstained, correct, cited, supported, grounded)

    metrics = aggregate([score(2, 2, True), score(2, 1, False), score(0, 0, False, abstained=True),
                         score(0, 0, False, abstained=True, correct=False)])
    assert metrics == {"rouge_l": 0.5, "token_f1": 0.5, "citation_precision": 0.75, "grounded_rate": 0.5,
                       "abstention_correctness": 0.75}
    assert set(metrics) == set(METRICS)
    assert aggregate([score(0, 0, False)])["citation_precision"] == 0.0  # nothing cited: no credit
    assert aggregate([score(0, 0, False, abstained=True)])["grounded_rate"] == 0.0
    with pytest.raises(ValueError):
        aggregate([])


def test_citation_precision_and_grounded_rate_use_the_cited_source() -> None:
    examples = HELD[:2]
    right = score_answers(examples, [RESET, RESET], judge)
    wrong_source = score_answers(examples, ["Hold the reset button for 10 seconds [2].", RESET], judge)
    not_in_prompt = score_answers(examples, ["Hold the reset button for 10 seconds [7].", RESET], judge)
    assert right["citation_precision"] == right["grounded_rate"] == 1.0
    assert wrong_source["citation_precision"] == not_in_prompt["citation_precision"] == 0.5
    assert wrong_source["grounded_rate"] == 0.5
    assert score_answers(examples, ["I don't know.", RESET], judge)["abstention_correctness"] == 0.5


# --- the gate --------------------------------------------------------------------------------------

def test_a_real_improvement_is_promoted() -> None:
    report = gate(candidate=GOOD, current=scripted(reset="Press reset [1].", wifi=WIFI, paint="I don't know."),
                  base=scripted(reset="I am not sure.", wifi="I am not sure.", paint="Yes."))
    decision = report.decision
    assert decision.promote and decision.compared_with == "current", decision.reasons
    assert decision.reasons[0].startswith("held_out: rouge_l") and "beats current" in decision.reasons[0]
    summary = report.summary()
    assert set(summary["sets"]) == {HELD_OUT, GOLDEN}
    assert summary["sets"][GOLDEN]["n_examples"] == 6 and set(summary["sets"][GOLDEN]["results"]) == {
        "candidate", "current", "base"}
    assert report.answers()[GOLDEN]["candidate"][-1] == "I don't know."


def test_a_held_out_win_does_not_excuse_a_golden_set_regression() -> None:
    """The candidate learned the held-out answers but stopped abstaining on the golden set."""
    candidate = scripted(reset=RESET, wifi=WIFI, paint="Yes, paint it with any paint [1].")
    report = gate(candidate=candidate, current=scripted(reset="Press reset [1].", wifi=WIFI, paint="I don't know."),
                  base=GOOD)
    decision = report.decision
    assert not decision.promote
    assert "beats current" in decision.reasons[0]
    assert any(r.startswith("golden: abstention_correctness falls") for r in decision.reasons), decision.reasons
    assert any(r.startswith("golden: citation_precision falls") for r in decision.reasons)


def test_a_candidate_citing_unsupported_sources_is_refused() -> None:
    """Closer to the reference's words, but its citation points at a source that does not say it."""
    candidate = scripted(reset="Hold the reset button for 10 seconds [2].", wifi=WIFI, paint="I don't know.")
    report = gate(candidate=candidate, current=scripted(reset="Hold reset [1].", wifi=WIFI, paint="I don't know."),
                  base=scripted(reset="Unplug it.", wifi="Unplug it.", paint="I don't know."))
    decision = report.decision
    assert not decision.promote and "beats current" in decision.reasons[0]
    assert any(r.startswith("held_out: citation_precision falls by 1.0000") for r in decision.reasons), decision.reasons
    assert any(r.startswith("held_out: grounded_rate falls") for r in decision.reasons)


def test_a_worse_candidate_is_refused() -> None:
    report = gate(candidate=scripted(reset="Unplug it.", wifi=WIFI, paint="I don't know."), current=GOOD, base=GOOD)
    decision = report.decision
    assert not decision.promote and "does not beat current" in decision.reasons[0]


def test_a_tie_with_itself_is_refused() -> None:
    decision = gate(candidate=GOOD, base=GOOD).decision
    assert not decision.promote and decision.compared_with == "base"
    assert decision.reasons[-1] == "held_out and golden: no metric falls by more than 0.02 against base"


def results(rouge: float, other: float = 0.5) -> dict[str, float]:
    return {metric: rouge if metric == "rouge_l" else other for metric in METRICS}


def sets(held: dict[str, dict[str, float]], golden: dict[str, dict[str, float]] | None = None,
         n: int = 100) -> dict[str, dict[str, object]]:
    return {HELD_OUT: {"n_examples": n, "results": held}, GOLDEN: {"n_examples": 27, "results": golden or held}}


def test_a_gain_on_the_primary_metric_does_not_excuse_a_regression_elsewhere() -> None:
    held = {"candidate": {**results(0.6), "citation_precision": 0.5}, "current": {**results(0.5), "citation_precision": 0.9},
            "base": results(0.3)}
    decision = decide(sets(held), GATE)
    assert not decision.promote
    assert "held_out: citation_precision falls by 0.4000 against current (0.9000 -> 0.5000; tolerance 0.02)" in decision.reasons
    assert "golden: citation_precision falls by 0.4000 against current (0.9000 -> 0.5000; tolerance 0.02)" in decision.reasons


def test_the_primary_metric_may_not_fall_on_the_golden_set_either() -> None:
    held = {"candidate": results(0.6), "current": results(0.5), "base": results(0.3)}
    golden = {"candidate": results(0.4), "current": results(0.5), "base": results(0.3)}
    decision = decide(sets(held, golden), GATE)
    assert not decision.promote and any(r.startswith("golden: rouge_l falls by 0.1000") for r in decision.reasons)


def test_below_the_base_model_is_refused_even_when_beating_current() -> None:
    held = {"candidate": results(0.40), "current": results(0.30), "base": results(0.45)}
    decision = decide(sets(held), GATE)
    assert not decision.promote and any("below the base" in r for r in decision.reasons)


def test_too_few_held_out_examples_or_no_golden_set_is_no_decision() -> None:
    held = {"candidate": results(1.0, 1.0), "base": results(0.0, 0.0)}
    few = decide(sets(held, n=2), GATE)
    assert not few.promote and few.reasons == ["held_out: only 2 examples (need 5); no decision"]
    assert not decide({HELD_OUT: {"n_examples": 100, "results": held}}, GATE).promote
    empty = run_gate({HELD_OUT: [], GOLDEN: GOLD}, {"candidate": GOOD, "base": GOOD}, judge=judge, gate=GATE)
    assert not empty.decision.promote and empty.summary()["sets"][HELD_OUT] == {
        "n_examples": 0, "results": {"candidate": {}, "base": {}}}


def test_run_gate_refuses_unknown_sets_and_missing_models() -> None:
    with pytest.raises(ValueError, match="unknown evaluation sets"):
        run_gate({"test": HELD}, {"candidate": GOOD, "base": GOOD}, judge=judge, gate=GATE)
    with pytest.raises(ValueError, match="'candidate' and a 'base'"):
        run_gate({HELD_OUT: HELD}, {"candidate": GOOD}, judge=judge, gate=GATE)


def test_evaluate_models_keeps_each_models_answers() -> None:
    report = evaluate_models(HELD[:2], {"candidate": GOOD}, judge=judge)
    assert report["n_examples"] == 2 and report["answers"]["candidate"] == [RESET, RESET]
    assert report["results"]["candidate"]["rouge_l"] == 1.0


def test_gate_config_validation() -> None:
    with pytest.raises(ValueError, match="primary"):
        GateConfig(primary="citation_f1")
    with pytest.raises(ValueError, match="margin"):
        GateConfig(margin=-1)
    with pytest.raises(ValueError, match="min_examples"):
        GateConfig(min_examples=0)
    assert GateConfig(primary="grounded_rate").primary == "grounded_rate"
