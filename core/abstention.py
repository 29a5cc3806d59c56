"""What counts as an abstention in an answer's text ("I don't know", then a hand-off): one rule for
the answer pipeline (``knowledge``), which turns such a reply into a hand-off, and for the training
gate (``training``), which scores whether a model abstained exactly when it should."""

from __future__ import annotations

ABSTENTION_OPENINGS = ("i don't know", "i do not know", "i'm sorry, i don't know", "sorry, i don't know")


def is_abstention(text: str) -> bool:
    """Whether ``text`` opens with "I don't know" (any case, curly or straight apostrophe, any spacing)."""
    normalised = " ".join(text.lower().replace("’", "'").split())
    return normalised.startswith(ABSTENTION_OPENINGS)
