"""Whether the section an answer would quote covers what the question is about.

Retrieval and sentence scores cannot tell a near miss from an answerable question: "Does the R7
support IPv6?" retrieves the router's network sections and their best sentence matches "R7" and
"support" well, yet no source says anything about IPv6. What gives it away is a word that is
central to the question and that the quoted section neither contains nor has a near synonym for.
Paraphrases ("wipe" for "erase", "orange" for "amber") have a near synonym in the section; filler
words ("exactly", "itself") are missing too, but are far from the question's meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from knowledge.text_analysis import word_forms

Vectors = Callable[[list[str]], list[np.ndarray]]
"""Unit-length embeddings of texts, in order (cached by the caller)."""


def unmatched_focus(question: str, section: str, heading_path: Sequence[str], vectors: Vectors) -> float:
    """The largest ``salience x (1 - match)`` over the question's words whose stem is not in the
    section (its text and heading path): salience is the word's cosine to the whole question, match
    its best cosine to any word of the section. 0 when every question term is in the section.

    Measured on the calibration halves of manuals-eval and squad-dev (README, "Answers"): the
    unanswerable questions score above 0.22 far more often than the answerable ones.
    """
    asked = word_forms(question)
    present = section_words(section, heading_path)
    missing = [word for term, word in asked.items() if term not in present]
    if not missing:
        return 0.0
    if not present:
        return 1.0
    question_vector, *missing_vectors = vectors([question, *missing])
    section_vectors = np.stack(vectors(list(present.values())))
    salience = np.stack(missing_vectors) @ question_vector
    match = (np.stack(missing_vectors) @ section_vectors.T).max(axis=1)
    return float((salience * (1.0 - match)).max())


def section_words(section: str, heading_path: Sequence[str]) -> dict[str, str]:
    """The section's terms (of its text and heading path), each with the word that stands for it."""
    return word_forms(" ".join([*heading_path, section]))
