"""Training examples from an evaluation data set: the question with its gold passage as the one
numbered source, and the gold answer, citing it, as the target.

Every token of an example costs training time (LoRA on SmolLM2 runs at about 150 tokens/s on two
CPU cores) while the loss only covers the answer, so the passage is cut to the sentences around
the answer, at most ``context_words`` words: enough to learn to copy the answer from its source and
cite it, short enough for hundreds of examples in minutes. The prompt itself (system message and
source fences) is rendered by the caller, exactly as the answer pipeline renders it, because
``training`` may not import ``knowledge``.

Usage::

    messages = gold_example(question, answers, passages, render, context_words=60)
    dataset_dir = write_gold_dataset([GoldExample(q.id, q.group or q.id, messages)], Path("runs/ds"))
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.dataset import BuiltDataset, DatasetConfig, Example, write_dataset

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class SourcePassage:
    title: str
    text: str


@dataclass(frozen=True)
class GoldExample:
    id: str
    group: str
    messages: list[dict[str, str]]


PassageRenderer = Callable[[str, list[SourcePassage]], list[dict[str, str]]]
"""(question, numbered sources) → the prompt messages (system, user) the answer pipeline would send."""


def answer_excerpt(text: str, answer: str, max_words: int) -> str:
    """The sentence holding ``answer`` (the first one when it is not found) and its neighbours,
    next then previous, while the excerpt stays within ``max_words`` words. A single sentence over
    the cap is cut to a window of ``max_words`` words around the answer.

    :raises ValueError: when ``max_words`` < 1.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, not {max_words}")
    sentences = [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]
    if not sentences:
        return ""
    needle = answer.lower().strip()
    hit = next((i for i, s in enumerate(sentences) if needle and needle in s.lower()), 0)
    words = sentences[hit].split()
    if len(words) > max_words:
        at = sentences[hit].lower().find(needle) if needle else -1
        answer_word = len(sentences[hit][:at].split()) if at > 0 else 0
        start = max(0, min(answer_word - max_words // 3, len(words) - max_words))
        return " ".join(words[start:start + max_words])
    first, last, used = hit, hit, len(words)
    grew = True
    while grew:
        grew = False
        for candidate in (last + 1, first - 1):
            if 0 <= candidate < len(sentences) and not first <= candidate <= last:
                size = len(sentences[candidate].split())
                if used + size <= max_words:
                    first, last, used, grew = min(first, candidate), max(last, candidate), used + size, True
    return " ".join(sentences[first:last + 1])


def answer_target(answer: str) -> str:
    """The gold answer as the pipeline expects an answer: one sentence citing source 1."""
    return f"{answer.strip().rstrip('.')} [1]."


def gold_example(question: str, answers: list[str], passages: list[SourcePassage], render: PassageRenderer, *,
                 context_words: int) -> list[dict[str, str]] | None:
    """Chat messages ending with the target, or None when there is no answer or no passage.

    The source is the gold passage that contains the first answer (else the first gold passage),
    cut by :func:`answer_excerpt`.
    """
    answer = next((a for a in answers if a.strip()), "")
    if not answer or not passages:
        return None
    passage = next((p for p in passages if answer.lower() in p.text.lower()), passages[0])
    source = SourcePassage(passage.title, answer_excerpt(passage.text, answer, context_words))
    return [*render(question, [source]), {"role": "assistant", "content": answer_target(answer)}]


def write_gold_dataset(examples: list[GoldExample], out_dir: Path) -> Path:
    """Write the examples as the training split of a dataset directory that
    :func:`training.lora.train` reads (no validation or test split: the caller evaluates).

    :returns: the dataset directory (``out_dir/<version>``).
    """
    built = BuiltDataset(
        config=DatasetConfig(tenant_id="gold-examples", validation_fraction=0.0, test_fraction=0.0),
        splits={"train": [Example(id=e.id, turn_id=e.id, conversation_id=e.group, kind="gold", messages=e.messages)
                          for e in examples], "validation": [], "test": []},
        excluded=Counter(), redactions=Counter())
    return write_dataset(built, out_dir)
