"""Sentence splitting for answers and sources (extraction, citation checks)."""

from __future__ import annotations

import re
from functools import lru_cache

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets and citation markers
# such as "[2]") before whitespace; list items and table rows (one per line) are sentences too.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*(?:\s*\[\d+\])*\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "approx.", "no.", "fig.", "e.g", "i.e")


_NUMBERING = re.compile(r"^\d{1,2}[.)]\s+")
_ITEM_START = re.compile(r"^\s*(?:[-*•|#>]|\d{1,2}[.)]\s)")


def logical_lines(text: str) -> list[str]:
    """Paragraphs, list items and table rows, with hard-wrapped lines (plain text, PDF) re-joined."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        for raw in paragraph.splitlines():
            if lines and raw.strip() and not _ITEM_START.match(raw) and lines[-1] and not lines[-1].startswith("|") \
                    and not lines[-1].rstrip().endswith((".", "!", "?", ":")):
                lines[-1] = f"{lines[-1].rstrip()} {raw.strip()}"
            else:
                lines.append(raw.strip())
        lines.append("")
    return lines


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order, stripped; paragraph, list-item and table-row breaks end a
    sentence, hard line wraps do not."""
    return list(_sentences(text))


@lru_cache(maxsize=8192)
def _sentences(text: str) -> tuple[str, ...]:
    # remembered: an answer splits each retrieved source several times (ranking, checks, gate)
    sentences: list[str] = []
    for line in logical_lines(text):
        line = _NUMBERING.sub("", line.strip(" \t-*•|#>"))
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
    return tuple(s for s in sentences if any(ch.isalnum() for ch in s))
