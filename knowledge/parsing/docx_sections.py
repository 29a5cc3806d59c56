from __future__ import annotations

import io
import re
import zipfile
import zlib
from typing import Any

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph
from docx.text.run import Run
from lxml import etree

from knowledge.parsing.sections import ParsedFile, ParseError, Section, normalise_whitespace

_HEADING_STYLE = re.compile(r"^Heading (\d)$")
# A DOCX is a zip: refuse archives whose declared expansion is absurd (zip bombs).
# The sizes are the ones the archive declares; Python's zipfile never inflates a member past its
# declared size (a member that lies fails its CRC check), so a lying header cannot get round them.
_MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
# XML is parsed into a tree several times its size: a text-only manual's XML is a few MB.
_MAX_XML_BYTES = 32 * 1024 * 1024


def _check_archive(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ParseError("not a DOCX file (not a zip archive)") from exc
    total = sum(info.file_size for info in members)
    if total > _MAX_UNCOMPRESSED_BYTES:
        raise ParseError(f"DOCX expands to {total // (1024 * 1024)} MB, over the 200 MB limit (zip bomb?)")
    xml = sum(info.file_size for info in members if info.filename.lower().endswith((".xml", ".rels")))
    if xml > _MAX_XML_BYTES:
        raise ParseError(f"DOCX holds {xml // (1024 * 1024)} MB of XML, over the 32 MB limit (zip bomb?)")


def _visible_text(paragraph: Paragraph) -> str:
    """The paragraph's text without runs formatted as hidden (``w:vanish``): Word does not show
    them, so a reader never sees an instruction planted there, and neither should the index."""
    parts: list[str] = []
    for item in paragraph.iter_inner_content():
        runs = [item] if isinstance(item, Run) else list(item.runs)
        parts.extend(run.text for run in runs if not run.font.hidden)
    return "".join(parts)


# What python-docx raises on a damaged package: it reads parts lazily, so a broken styles part or
# relationship fails while the paragraphs are walked, not when the file is opened (found by fuzzing).
_DAMAGED = (KeyError, ValueError, TypeError, AttributeError, IndexError, zipfile.BadZipFile, EOFError,
            NotImplementedError, zlib.error, etree.LxmlError)


def parse_docx(data: bytes, *, fallback_title: str) -> ParsedFile:
    """Split a Word document at paragraphs styled "Heading N"; tables become ``a | b`` rows.

    :raises ParseError: not a zip, a zip bomb, or a damaged package.
    """
    _check_archive(data)
    try:
        return _parse_document(docx.Document(io.BytesIO(data)), fallback_title)
    except _DAMAGED as exc:
        raise ParseError(f"not a readable DOCX ({type(exc).__name__}: {exc})") from exc


def _parse_document(document: Any, fallback_title: str) -> ParsedFile:
    title = (document.core_properties.title or "").strip()
    path: list[tuple[int, str]] = []
    buffer: list[str] = []
    sections: list[Section] = []

    def flush() -> None:
        body = normalise_whitespace("\n".join(buffer))
        if body:
            sections.append(Section(heading_path=tuple(h for _, h in path) or (title or fallback_title,),
                                    text=body))
        buffer.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                buffer.append(" | ".join(cell.text.strip() for cell in row.cells))
            continue
        if not isinstance(block, Paragraph):
            continue
        style = block.style.name if block.style is not None else ""
        text = _visible_text(block).strip()
        if style == "Title" and text:
            title = title or text
            continue
        match = _HEADING_STYLE.match(style or "")
        if match and text:
            flush()
            level = int(match.group(1))
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, text))
            continue
        if text:
            buffer.append(f"- {text}" if "List" in (style or "") else text)
    flush()
    return ParsedFile(title=title or fallback_title, sections=sections)
