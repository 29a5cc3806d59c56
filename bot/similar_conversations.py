"""Past conversations like a new question: well-received turns ranked by the share of the
question's terms they contain (question and answer together). Deliberately simple: it runs over
the tenant's rated turns in the database, with no index of its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from knowledge.text_analysis import analyse


@dataclass(frozen=True)
class PastTurn:
    """A well-received past turn; ``answer`` is the agent's corrected answer when there is one."""

    conversation_id: str
    turn_id: str
    question: str
    answer: str


@dataclass(frozen=True)
class SimilarTurn:
    turn: PastTurn
    score: float
    """Share of the question's distinct terms found in the past turn, 0-1."""


def rank_similar(question: str, candidates: Sequence[PastTurn], *, limit: int = 3, min_score: float = 0.2
                 ) -> list[SimilarTurn]:
    """The ``limit`` candidates sharing the most of the question's terms (at least ``min_score``).

    Usage::

        rank_similar("router keeps rebooting", past_turns)[0].turn.answer
    """
    terms = set(analyse(question))
    if not terms:
        return []
    scored = []
    for candidate in candidates:
        shared = terms & set(analyse(f"{candidate.question} {candidate.answer}"))
        score = len(shared) / len(terms)
        if score >= min_score:
            scored.append(SimilarTurn(turn=candidate, score=round(score, 4)))
    scored.sort(key=lambda item: item.score, reverse=True)  # stable: newest first among equals
    return scored[:limit]
