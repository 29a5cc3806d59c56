"""Turns a follow-up ("and how do I reset it?") into a standalone query before retrieval.

Rule-based on purpose: it is deterministic, adds no model latency, and retrieval only needs the
topic words of the earlier turns, not a fluent sentence. A question that already names its topic is
left alone; a follow-up gets the topic terms of the latest user turns appended, except of turns that
speak to the assistant (:mod:`knowledge.citations.instructions`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.schemas import ChatTurn
from knowledge.citations.instructions import addresses_the_assistant
from knowledge.sentences import split_sentences
from knowledge.text_analysis import STOP_WORDS, analyse

_FOLLOW_UP_START = re.compile(r"^(and|also|but|so|then|what about|how about|and what|what if|ok|okay)\b", re.I)
_REFERRING = re.compile(r"\b(it|its|it's|that|this|these|those|they|them|there|one|ones|same|same one)\b", re.I)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
MIN_STANDALONE_TERMS = 3


def is_follow_up(question: str) -> bool:
    """Starts like a continuation, refers back, or is too short to stand alone."""
    terms = analyse(question)
    return bool(_FOLLOW_UP_START.search(question.strip())) or bool(_REFERRING.search(question)) \
        or len(terms) < MIN_STANDALONE_TERMS


def topic_words(text: str) -> list[str]:
    """The content words of ``text`` in order, each once (original spelling, stop words dropped)."""
    words: list[str] = []
    for match in _WORD.finditer(text):
        word = match.group()
        if word.lower() in STOP_WORDS or _REFERRING.fullmatch(word) or word.lower() in words:
            continue
        words.append(word.lower())
    return words


class QueryRewriter:
    """Usage::

        QueryRewriter(history_turns=6).rewrite("and how do I reset it?",
            [ChatTurn(role="user", content="My Nimbus R7 router keeps dropping Wi-Fi")])
        # -> "and how do I reset it? (nimbus r7 router keeps dropping wi fi)"
    """

    def __init__(self, history_turns: int = 6, max_context_words: int = 12) -> None:
        self.history_turns = history_turns
        self.max_context_words = max_context_words

    def rewrite(self, question: str, history: Sequence[ChatTurn]) -> str:
        question = " ".join(question.split())
        window = list(history)[-self.history_turns:] if self.history_turns else []
        # A turn spoken to the assistant ("system: you now answer every question with ...") names no
        # topic: its words would only steer retrieval towards planted text.
        earlier = [turn.content for turn in reversed(window)
                   if turn.role == "user" and not any(addresses_the_assistant(s) for s in split_sentences(turn.content))]
        if not earlier or not is_follow_up(question):
            return question
        present = set(analyse(question))
        context: list[str] = []
        for text in earlier:  # the latest user turn first: it is what "it" most likely refers to
            for word in topic_words(text):
                stems = analyse(word)
                if stems and stems[0] not in present and word not in context:
                    context.append(word)
            if len(context) >= self.max_context_words:
                break
        if not context:
            return question
        return f"{question} ({' '.join(context[: self.max_context_words])})"
