from __future__ import annotations

import re

from knowledge.parsing.sections import ParsedFile, Section, normalise_whitespace

_UNDERLINE = re.compile(r"^(=+|-+)\s*$")


def _is_caps_heading(line: str) -> bool:
    letters = [ch for ch in line if ch.isalpha()]
    return 3 <= len(line) <= 80 and len(letters) >= 3 and all(ch.isupper() for ch in letters)


def parse_text(text: str, *, fallback_title: str) -> ParsedFile:
    """Plain text: headings are underlined lines (``====``/``----``) or short ALL-CAPS lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    headings: list[tuple[int, str]] = []  # line index where the body starts, heading
    index = 0
    heading_lines: set[int] = set()
    while index < len(lines):
        line = lines[index].strip()
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if line and _UNDERLINE.match(following) and len(following) >= 3:
            headings.append((index + 2, line))
            heading_lines.update({index, index + 1})
            index += 2
            continue
        if _is_caps_heading(line):
            headings.append((index + 1, line.title() if line.isupper() else line))
            heading_lines.add(index)
        index += 1

    title = headings[0][1] if headings and headings[0][0] <= 3 else fallback_title
    sections: list[Section] = []
    bounds = [(0, title), *headings]
    for position, (start, heading) in enumerate(bounds):
        end = bounds[position + 1][0] if position + 1 < len(bounds) else len(lines)
        body_lines = [lines[i] for i in range(start, end) if i not in heading_lines]
        body = normalise_whitespace("\n".join(body_lines))
        if body:
            path = (heading,) if heading == title else (title, heading)
            sections.append(Section(heading_path=path, text=body))
    return ParsedFile(title=title, sections=sections)
