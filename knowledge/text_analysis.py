"""Tokenisation for BM25: lower-cased word tokens, English stop words removed, Snowball-stemmed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import snowballstemmer

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

# A short list: manuals are full of meaningful short words ("on", "off", "up"), so only the
# function words that carry no meaning in a support question are dropped.
STOP_WORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "did", "do", "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "or", "our", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "was", "we", "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with", "would", "you", "your", "can", "could", "should"]
)

_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def _content_words(text: str) -> Iterator[str]:
    """The lower-cased words of ``text`` that are not stop words, in order (possessive 's dropped)."""
    for match in _TOKEN.finditer(text.lower()):
        word = match.group().replace("’", "'").removesuffix("'s")
        if word not in STOP_WORDS:
            yield word


def analyse(text: str) -> list[str]:
    """The BM25 terms of a text, in order (duplicates kept)."""
    return [_stem(word) for word in _content_words(text)]


@lru_cache(maxsize=65_536)
def term_set(text: str) -> frozenset[str]:
    """The distinct terms of ``text``, remembered: answers rank the same retrieved sentences and
    headings again and again (an answer reads each source sentence three times), and re-tokenising
    them was a quarter of an extractive answer's time (measured with cProfile)."""
    return frozenset(analyse(text))


def word_forms(text: str) -> dict[str, str]:
    """Each BM25 term of ``text`` mapped to the first word that produced it (lower-cased, unstemmed):
    a word, unlike a stem, can be embedded to compare it with other words by meaning."""
    forms: dict[str, str] = {}
    for word in _content_words(text):
        forms.setdefault(_stem(word), word)
    return forms
