"""Training examples from a data set's gold passages: the excerpt around the answer stays within
its word cap, the target cites the one source, and the examples load as a training split."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.dataset import load_split, read_manifest
from training.gold_examples import (
    GoldExample,
    SourcePassage,
    answer_excerpt,
    answer_target,
    gold_example,
    write_gold_dataset,
)

PASSAGE = ("Super Bowl 50 was an American football game. The AFC champion Denver Broncos defeated the NFC "
           "champion Carolina Panthers 24-10. The game was played on February 7, 2016, at Levi's Stadium in Santa "
           "Clara. It was the 50th Super Bowl. The league emphasized the golden anniversary.")


def render(question: str, sources: list[SourcePassage]) -> list[dict[str, str]]:
    numbered = "\n".join(f"[{n}] {s.title}: {s.text}" for n, s in enumerate(sources, start=1))
    return [{"role": "system", "content": "Answer from the sources."},
            {"role": "user", "content": f"{numbered}\nQuestion: {question}"}]


@pytest.mark.parametrize("cap", [1, 3, 8, 15, 25, 40, 1000])
def test_the_excerpt_keeps_the_answer_within_the_cap(cap: int) -> None:
    excerpt = answer_excerpt(PASSAGE, "Levi's Stadium", cap)
    assert len(excerpt.split()) <= cap
    assert excerpt in " ".join(PASSAGE.split()) or cap < 14  # whole sentences unless one sentence is over the cap
    if cap >= 2:
        assert "Levi's Stadium" in excerpt


def test_the_excerpt_grows_around_the_answer_sentence() -> None:
    assert answer_excerpt(PASSAGE, "Levi's Stadium", 14) == \
        "The game was played on February 7, 2016, at Levi's Stadium in Santa Clara."
    assert answer_excerpt(PASSAGE, "levi's stadium", 20).endswith("It was the 50th Super Bowl.")
    assert answer_excerpt(PASSAGE, "Levi's Stadium", 1000) == PASSAGE
    assert answer_excerpt(PASSAGE, "not in the text", 12) == "Super Bowl 50 was an American football game."
    with pytest.raises(ValueError, match="max_words"):
        answer_excerpt(PASSAGE, "x", 0)


def test_the_example_cites_the_passage_holding_the_answer() -> None:
    other = SourcePassage("Other", "Nothing relevant here.")
    gold = SourcePassage("Super Bowl 50", PASSAGE)
    messages = gold_example("Where was Super Bowl 50 played?", ["Levi's Stadium", "Santa Clara"], [other, gold],
                            render, context_words=20)
    assert messages is not None
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[-1]["content"] == "Levi's Stadium [1]." == answer_target("Levi's Stadium.")
    assert "Levi's Stadium" in messages[1]["content"] and "Nothing relevant" not in messages[1]["content"]
    assert len(messages[1]["content"].split("[1] Super Bowl 50: ")[1].split("\nQuestion")[0].split()) <= 20
    assert gold_example("Unanswerable?", [], [gold], render, context_words=20) is None
    assert gold_example("No passage?", ["x"], [], render, context_words=20) is None


def test_the_examples_load_as_a_training_split(tmp_path: Path) -> None:
    messages = gold_example("Who won?", ["Denver Broncos"], [SourcePassage("SB", PASSAGE)], render, context_words=20)
    assert messages is not None
    path = write_gold_dataset([GoldExample("q1", "g1", messages), GoldExample("q2", "g1", messages)], tmp_path)
    assert read_manifest(path)["counts"] == {"train": 2, "validation": 0, "test": 0}
    rows = load_split(path, "train")
    assert [row["messages"] for row in rows] == [messages, messages]
    assert load_split(path, "validation") == []
