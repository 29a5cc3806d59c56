from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path; ``page`` is 1-based where the format has pages."""

    heading_path: tuple[str, ...]
    text: str
    page: int | None = None


@dataclass
class ParsedFile:
    title: str
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class ParseError(ValueError):
    """The file cannot be read as the format its name claims; the message says why."""


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks (at most one blank line)."""
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    return "\n".join(out).strip()
