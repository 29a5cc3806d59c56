from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from knowledge.parsing.sections import ParsedFile, ParseError, Section, normalise_whitespace

_HEADING_STYLE = re.compile(r"^Heading (\d)$")
# A DOCX is a zip: refuse archives whose declared expansion is absurd (zip bombs).
_MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024


def _check_archive(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise ParseError("not a DOCX file (not a zip archive)") from exc
    if total > _MAX_UNCOMPRESSED_BYTES:
        raise ParseError(f"DOCX expands to {total // (1024 * 1024)} MB, over the 200 MB limit (zip bomb?)")


def parse_docx(data: bytes, *, fallback_title: str) -> ParsedFile:
    """Split a Word document at paragraphs styled "Heading N"; tables become ``a | b`` rows."""
    _check_archive(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ParseError(f"not a readable DOCX ({type(exc).__name__}: {exc})") from exc
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
        text = block.text.strip()
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
