"""Sentence splitting for answers and sources (extraction, citation checks)."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets and citation markers
# such as "[2]") before whitespace; list items and table rows (one per line) are sentences too.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*(?:\s*\[\d+\])*\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "approx.", "no.", "fig.", "e.g", "i.e")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order, stripped; line breaks always end a sentence."""
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip(" \t-*•|#>")
        if not line:
            continue
        start = 0
        for match in _BOUNDARY.finditer(line):
            candidate = line[start:match.start()].strip()
            before = line[: match.start()].lower()
            if before.endswith(_ABBREVIATIONS) or not candidate:
                continue
            sentences.append(line[start:match.end()].strip())
            start = match.end()
        tail = line[start:].strip()
        if tail:
            sentences.append(tail)
    return [s for s in sentences if any(ch.isalnum() for ch in s)]
