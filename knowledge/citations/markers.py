"""``[n]`` citation markers in generated text."""

from __future__ import annotations

import re

from core.text_metrics import CITATION_MARKER as MARKER


def marker_numbers(text: str) -> list[int]:
    """Every number cited in ``text``, in order of appearance, without repeats."""
    numbers: list[int] = []
    for match in MARKER.finditer(text):
        for part in re.split(r"[,;]", match.group(1)):
            number = int(part)
            if number not in numbers:
                numbers.append(number)
    return numbers


def strip_markers(text: str) -> str:
    """``text`` without citation markers (and without the space before them)."""
    return MARKER.sub("", text).strip()


def with_markers(sentence: str, numbers: list[int]) -> str:
    """``sentence`` with ``[n]`` markers placed before its final punctuation."""
    if not numbers:
        return sentence
    markers = "".join(f"[{n}]" for n in numbers)
    stripped = sentence.rstrip()
    if stripped and stripped[-1] in ".!?:":
        return f"{stripped[:-1]} {markers}{stripped[-1]}"
    return f"{stripped} {markers}"
