from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError

from knowledge.parsing.sections import ParsedFile, ParseError, Section, normalise_whitespace


@dataclass(frozen=True)
class _OutlineEntry:
    path: tuple[str, ...]
    page: int  # 0-based


def _flatten_outline(reader: PdfReader, items: list, parents: tuple[str, ...]) -> list[_OutlineEntry]:
    entries: list[_OutlineEntry] = []
    last_title: str | None = None
    for item in items:
        if isinstance(item, list):  # children of the previous entry
            if last_title is not None:
                entries.extend(_flatten_outline(reader, item, (*parents, last_title)))
            continue
        title = " ".join(str(item.title).split())
        page = reader.get_destination_page_number(item)
        if page is not None and page >= 0 and title:
            entries.append(_OutlineEntry(path=(*parents, title), page=page))
        last_title = title
    return entries


def _find_heading(text: str, heading: str, start: int) -> int:
    """Position of a heading in a page's extracted text, tolerant of whitespace changes."""
    position = text.find(heading, start)
    if position >= 0:
        return position
    squeezed = " ".join(heading.split()[:4])
    position = text.find(squeezed, start)
    return position if position >= 0 else start


def parse_pdf(data: bytes, *, fallback_title: str) -> ParsedFile:
    """Split a PDF by its outline (bookmarks), one section piece per page so each keeps its page
    number; a PDF without an outline gives one section per page."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise ParseError("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        outline = _flatten_outline(reader, reader.outline, ())
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except ParseError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, IndexError,
            NotImplementedError, zlib.error, OverflowError) as exc:  # damaged streams (found by fuzzing)
        raise ParseError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not pages:
        raise ParseError("PDF has no pages")
    title = " ".join(str(meta_title).split()) or (outline[0].path[0] if outline else fallback_title)
    if not any(page.strip() for page in pages):
        raise ParseError("PDF has no extractable text (scanned images need OCR)")

    if not outline:
        pages_as_sections = [
            Section(heading_path=(title,), text=normalise_whitespace(text), page=number + 1)
            for number, text in enumerate(pages)
            if text.strip()
        ]
        return ParsedFile(title=title, sections=pages_as_sections)

    # Cut points: (page, offset in that page's text, heading path), in reading order.
    cuts: list[tuple[int, int, tuple[str, ...]]] = []
    offsets = [0] * len(pages)
    for entry in sorted(outline, key=lambda e: e.page):
        offset = _find_heading(pages[entry.page], entry.path[-1], offsets[entry.page])
        offsets[entry.page] = offset
        cuts.append((entry.page, offset, entry.path))

    sections: list[Section] = []
    if cuts[0][0] > 0 or cuts[0][1] > 0:
        cuts.insert(0, (0, 0, (title,)))
    for index, (page, offset, path) in enumerate(cuts):
        end_page, end_offset = (cuts[index + 1][0], cuts[index + 1][1]) if index + 1 < len(cuts) else (
            len(pages) - 1, len(pages[-1]))
        for number in range(page, end_page + 1):
            start = offset if number == page else 0
            stop = end_offset if number == end_page else len(pages[number])
            text = pages[number][start:stop]
            if number == page:
                text = text.replace(path[-1], "", 1)  # the heading itself lives in heading_path
            body = normalise_whitespace(text)
            if body:
                sections.append(Section(heading_path=path, text=body, page=number + 1))
    return ParsedFile(title=title, sections=sections)
