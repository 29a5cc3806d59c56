from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Doctype, ProcessingInstruction

from knowledge.parsing.sections import ParsedFile, Section, normalise_whitespace

# Never indexed: executable or presentational content and page chrome.
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas",
              "nav", "header", "footer", "aside", "form", "button", "select", "head")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "pre", "blockquote", "table",
           "tr", "dl", "dt", "dd", "figcaption", "br", "hr", "details", "summary"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d])"
                           r"|opacity\s*:\s*0(?![.\d]*[1-9])|(?<![-\w])color\s*:\s*transparent", re.I)
# White text is only hidden on a page without a background of its own: the planted-instruction trick
# (white on the default white page); white on a coloured banner stays.
_WHITE_TEXT = re.compile(r"(?<![-\w])color\s*:\s*(?:white|#fff(?:fff)?|rgba?\(\s*255\s*,\s*255\s*,\s*255)\b", re.I)
_BACKGROUND = re.compile(r"background", re.I)


def _is_hidden(tag: Tag) -> bool:
    if tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
        return True
    style = tag.get("style")
    if not isinstance(style, str):
        return False
    return bool(_HIDDEN_STYLE.search(style)) or bool(_WHITE_TEXT.search(style) and not _BACKGROUND.search(style))


class _SectionCollector:
    def __init__(self, title: str) -> None:
        self.title = title
        self.path: list[tuple[int, str]] = []
        self.buffer: list[str] = []
        self.sections: list[Section] = []

    def flush(self) -> None:
        body = normalise_whitespace("".join(self.buffer))
        if body:
            heading_path = tuple(h for _, h in self.path) or (self.title,)
            self.sections.append(Section(heading_path=heading_path, text=body))
        self.buffer = []

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment | Doctype | ProcessingInstruction):
                continue
            if isinstance(child, NavigableString):
                self.buffer.append(str(child))
                continue
            if not isinstance(child, Tag) or _is_hidden(child):
                continue
            name = child.name.lower()
            if name in _HEADINGS:
                self.flush()
                level = _HEADINGS[name]
                while self.path and self.path[-1][0] >= level:
                    self.path.pop()
                heading = " ".join(child.get_text(" ").split())
                if heading:
                    self.path.append((level, heading))
                continue
            if name in ("td", "th"):
                self.buffer.append(" | ")
            if name == "li":
                self.buffer.append("\n- ")
            elif name in _BLOCKS:
                self.buffer.append("\n")
            self.walk(child)
            if name in _BLOCKS:
                self.buffer.append("\n")


def parse_html(markup: str | bytes, *, fallback_title: str) -> ParsedFile:
    """Split an HTML page at its ``h1``–``h6`` headings. Scripts, styles, hidden elements and page
    chrome (nav, header, footer, aside) are dropped before any text is read."""
    soup = BeautifulSoup(markup, "lxml")
    title_tag = soup.find("title")
    page_title = " ".join(title_tag.get_text(" ").split()) if title_tag else ""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    first_h1 = soup.find("h1")
    title = page_title or (" ".join(first_h1.get_text(" ").split()) if first_h1 else "") or fallback_title
    collector = _SectionCollector(title)
    root = soup.body or soup
    collector.walk(root)
    collector.flush()
    return ParsedFile(title=title, sections=collector.sections)
