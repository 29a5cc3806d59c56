"""Builds the chat messages for an answer from versioned Jinja templates, within a token budget.

Retrieved text is data: each source is fenced in a ``<source>`` element, labelled as reference data
in the system and user messages, and any fence-like markup inside it is neutralised so a document
cannot close its fence and speak as the prompt. Sources are added best first while they fit the
budget; one that does not fit is dropped whole (with every less relevant one), never cut mid-way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from haystack import Document
from jinja2 import Environment, StrictUndefined

from core.errors import ConfigError
from knowledge.generation.base import Message

ABSTAIN_PHRASE = "I don't know."
_FENCE = re.compile(r"<\s*/?\s*source\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class PromptSource:
    number: int
    title: str
    section: str
    page: int | None
    text: str


@dataclass
class BuiltPrompt:
    messages: list[Message]
    documents: list[Document]
    """The sources in the prompt, in order: source ``n`` is ``documents[n-1]``."""
    dropped: int = 0
    prompt_tokens: int = 0
    version: str = ""
    texts: list[str] = field(default_factory=list)


def neutralise(text: str) -> str:
    """Source text with fence tags defused (``<source>`` → ``‹source›``)."""
    return _FENCE.sub(lambda match: match.group().replace("<", "‹").replace(">", "›"), text).strip()


_SOURCE_BLOCK = re.compile(r'<source id="(\d+)"[^>]*>\n(.*?)\n</source>', re.DOTALL)


def prompt_source_texts(user_message: str) -> list[str]:
    """The texts of the numbered sources in a user message rendered by :class:`AnswerPrompt`, in
    order (source ``n`` is item ``n-1``): what the training gate checks a cited sentence against.
    The fences cannot be forged from inside a source (:func:`neutralise`)."""
    blocks = sorted((int(number), text) for number, text in _SOURCE_BLOCK.findall(user_message))
    return [text for _, text in blocks]


def _attr(value: str) -> str:
    return value.replace('"', "'").replace("<", "‹").replace(">", "›").replace("\n", " ")


@lru_cache(maxsize=8)
def _templates(version: str) -> tuple[Any, Any, list[dict[str, Any]]]:
    root = resources.files("knowledge.prompting") / "templates" / version
    if not root.is_dir():
        raise ConfigError(f"unknown prompt version {version!r} (no knowledge/prompting/templates/{version})")
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)  # chat text, not HTML
    system = env.from_string((root / "system.jinja2").read_text(encoding="utf-8"))
    user = env.from_string((root / "user.jinja2").read_text(encoding="utf-8"))
    examples_file = root / "examples.json"
    examples = json.loads(examples_file.read_text(encoding="utf-8")) if examples_file.is_file() else []
    return system, user, examples


def prompt_source(number: int, document: Document) -> PromptSource:
    meta = document.meta
    path = [str(part) for part in meta.get("heading_path") or []]
    page = meta.get("page")
    return PromptSource(number=number, title=_attr(str(meta.get("title") or (path[0] if path else ""))),
                        section=_attr(" > ".join(path[1:])), page=page if isinstance(page, int) else None,
                        text=neutralise(document.content or ""))


class AnswerPrompt:
    """Renders ``templates/<version>/`` into system + user messages.

    Usage::

        prompt = AnswerPrompt("answer-v1").build(question, chunks, count_tokens=generator.count_tokens,
                                                 max_prompt_tokens=1800)
        reply = generator.stream(GenerationRequest(messages=prompt.messages))
    """

    def __init__(self, version: str = "answer-v1", *, few_shot: bool = False, product: str = "",
                 canary: str = "") -> None:
        self.version = version
        self.few_shot = few_shot
        self.product = product
        self.canary = canary

    def _render(self, question: str, sources: list[PromptSource]) -> str:
        _, user, _ = _templates(self.version)
        return str(user.render(sources=sources, question=question)).strip()

    def _preamble(self) -> list[Message]:
        system, _, examples = _templates(self.version)
        messages = [Message("system", str(system.render(product=self.product, abstain_phrase=ABSTAIN_PHRASE, canary=self.canary)).strip())]
        if self.few_shot:
            for example in examples:
                sources = [PromptSource(number, _attr(s["title"]), _attr(s.get("section", "")), None, neutralise(s["text"]))
                           for number, s in enumerate(example["sources"], start=1)]
                messages += [Message("user", self._render(example["question"], sources)),
                             Message("assistant", example["answer"])]
        return messages

    def build(self, question: str, documents: list[Document], *, count_tokens: Callable[[str], int],
              max_prompt_tokens: int) -> BuiltPrompt:
        """Messages holding as many of ``documents`` (best first) as fit in ``max_prompt_tokens``.

        :raises ConfigError: when even the prompt without sources does not fit.
        """
        preamble = self._preamble()
        fixed = sum(count_tokens(message.content) for message in preamble)
        sources: list[PromptSource] = []
        used = fixed + count_tokens(self._render(question, []))
        if used > max_prompt_tokens:
            raise ConfigError(f"the prompt without sources takes {used} tokens, over the budget of {max_prompt_tokens}")
        for document in documents:
            candidate = [*sources, prompt_source(len(sources) + 1, document)]
            tokens = fixed + count_tokens(self._render(question, candidate))
            if tokens > max_prompt_tokens:
                break
            sources, used = candidate, tokens
        kept = documents[: len(sources)]
        messages = [*preamble, Message("user", self._render(question, sources))]
        return BuiltPrompt(messages=messages, documents=kept, dropped=len(documents) - len(kept),
                           prompt_tokens=used, version=self.version, texts=[s.text for s in sources])
