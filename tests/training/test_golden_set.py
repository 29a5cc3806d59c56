"""The golden set of the gate: it loads, is well-formed, is in the answer prompt's format, is what
``scripts/build_golden_set.py`` makes of the current sample manuals, and its references are
perfect under the real citation judge (the answer pipeline's support check)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from core.abstention import is_abstention
from core.errors import InvalidInputError
from core.settings import Settings
from jobs.training_inputs import citation_judge
from knowledge.prompting.answer_prompt import ABSTAIN_PHRASE, AnswerPrompt, prompt_source_texts
from training.evaluate import METRICS, score_answers
from training.golden_set import GOLDEN_SET, golden_set_version, load_golden_set, parse_golden_set

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def golden() -> list[dict]:
    return load_golden_set()


def test_the_golden_set_loads_and_is_well_formed(golden: list[dict]) -> None:
    kinds = [example["kind"] for example in golden]
    assert 20 <= len(golden) <= 30 and kinds.count("abstain") >= 4 and kinds.count("answer") >= 16
    assert len({example["id"] for example in golden}) == len(golden)
    assert {s["file"].split("/")[0] for example in golden for s in example["sources"]} == {"nimbus-r7", "lumen-brew3"}
    assert re.fullmatch(rf"{GOLDEN_SET}@[0-9a-f]{{12}}", golden_set_version())
    for example in golden:
        _system, user, reference = (m["content"] for m in example["messages"])
        sources = prompt_source_texts(user)
        assert len(sources) == len(example["sources"]) >= 1, example["id"]
        assert user.endswith(f"Question: {example['question']}")
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", reference)}
        if example["kind"] == "abstain":
            assert reference == ABSTAIN_PHRASE and is_abstention(reference) and not cited
        else:
            assert cited and cited <= set(range(1, len(sources) + 1)), example["id"]
            assert not is_abstention(reference)


def test_the_prompts_are_the_answer_prompt(golden: list[dict]) -> None:
    """The system message the answer service sends (answer-v1, no few-shot examples)."""
    expected = AnswerPrompt("answer-v1").build("q", [], count_tokens=len, max_prompt_tokens=10**6).messages[0].content
    assert {example["messages"][0]["content"] for example in golden} == {expected}


def test_the_references_are_perfect_under_the_real_citation_judge(golden: list[dict]) -> None:
    references = [example["messages"][-1]["content"] for example in golden]
    metrics = score_answers(golden, references, citation_judge(Settings()))
    assert set(metrics) == set(METRICS) and all(value == 1.0 for value in metrics.values()), metrics


def test_the_real_judge_refuses_a_citation_of_the_wrong_source(golden: list[dict]) -> None:
    factory_reset = next(example for example in golden if example["id"] == "g01")
    judged = citation_judge(Settings())(factory_reset["messages"][:-1],
                                        "Press and hold the recessed Reset button for 10 seconds with a paper clip [2].")
    assert [(s.cited, s.supported) for s in judged] == [((2,), ())]


def test_the_file_is_what_the_build_script_makes_of_the_manuals() -> None:
    spec = importlib.util.spec_from_file_location("build_golden_set", ROOT / "scripts" / "build_golden_set.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert builder.golden_text() == (ROOT / "training" / "golden" / f"{GOLDEN_SET}.jsonl").read_text(encoding="utf-8"), (
        "the golden set is out of date: run scripts/build_golden_set.py")


def test_malformed_golden_sets_are_refused() -> None:
    good = load_golden_set()[0]
    line = json.dumps(good)
    assert parse_golden_set(line, "x.jsonl") == [good]
    cases = {
        "not JSON": "{",
        "messages must be": json.dumps({**good, "messages": good["messages"][:2]}),
        "kind must be": json.dumps({**good, "kind": "maybe"}),
        "abstains exactly when": json.dumps({**good, "kind": "abstain"}),
        "repeated id": line + "\n" + line,
        "holds no examples": "\n",
    }
    for message, text in cases.items():
        with pytest.raises(InvalidInputError, match=message):
            parse_golden_set(text, "x.jsonl")
    with pytest.raises(InvalidInputError, match="no golden set 'nope'"):
        load_golden_set("nope")
