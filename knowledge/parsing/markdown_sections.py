from __future__ import annotations

import re

from markdown_it import MarkdownIt

from knowledge.parsing.sections import ParsedFile, Section, normalise_whitespace

_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def parse_markdown(text: str, *, fallback_title: str) -> ParsedFile:
    """Split Markdown at its ATX/Setext headings; each section keeps its Markdown source."""
    text = _FRONT_MATTER.sub("", text.replace("\r\n", "\n"))
    text = _HTML_COMMENT.sub("", text)
    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)

    headings: list[tuple[int, str, int, int]] = []  # level, title, first line, line after heading
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            title = tokens[index + 1].content.strip()
            headings.append((int(token.tag[1]), title, token.map[0], token.map[1]))

    title = next((h[1] for h in headings if h[0] == 1), fallback_title)
    sections: list[Section] = []
    preamble = normalise_whitespace("\n".join(lines[: headings[0][2]] if headings else lines))
    if preamble:
        sections.append(Section(heading_path=(title,), text=preamble))

    path: list[tuple[int, str]] = []
    for position, (level, heading, _start, body_start) in enumerate(headings):
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, heading))
        body_end = headings[position + 1][2] if position + 1 < len(headings) else len(lines)
        body = normalise_whitespace("\n".join(lines[body_start:body_end]))
        if body:
            sections.append(Section(heading_path=tuple(h for _, h in path), text=body))
    return ParsedFile(title=title, sections=sections)
