"""The near-miss check: a word central to the question that the quoted section lacks."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.answerability import unmatched_focus

# Toy embeddings: a word is a unit axis (synonyms share one, unknown words share the last); a text
# is the normalised sum of its words, its central word counting twice.
AXES = {"ipv6": 0, "support": 1, "router": 2, "erase": 3, "wipe": 3, "exactly": 4, "settings": 5}
UNKNOWN = 6


def toy_vectors(texts: list[str]) -> list[np.ndarray]:
    vectors = []
    for text in texts:
        vector = np.zeros(7)
        for word in text.lower().replace("?", "").replace(".", "").split():
            vector[AXES.get(word, UNKNOWN)] += 2.0 if word in ("ipv6", "wipe") else 1.0
        vectors.append(vector / np.linalg.norm(vector))
    return vectors


def test_nothing_missing_is_no_gap() -> None:
    assert unmatched_focus("router settings", "The router keeps its settings.", [], toy_vectors) == 0.0


def test_a_central_word_without_a_synonym_in_the_section_is_a_large_gap() -> None:
    question = "router support ipv6"
    gap = unmatched_focus(question, "The router supports WPA3.", ["Guide", "Security"], toy_vectors)
    assert gap == pytest.approx(toy_vectors(["ipv6"])[0] @ toy_vectors([question])[0])  # no match at all
    assert gap > 0.5


def test_a_paraphrase_with_a_synonym_in_the_section_is_no_gap() -> None:
    assert unmatched_focus("wipe router", "A reset will erase the router.", [], toy_vectors) == pytest.approx(0.0)


def test_a_filler_word_far_from_the_question_is_a_small_gap() -> None:
    gap = unmatched_focus("wipe router exactly", "A reset will erase the router.", [], toy_vectors)
    assert 0 < gap < 0.5


def test_heading_words_count_as_present() -> None:
    assert unmatched_focus("ipv6 router", "The router.", ["Guide", "IPv6"], toy_vectors) == 0.0
