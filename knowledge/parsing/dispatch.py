from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from bs4.dammit import EncodingDetector

from knowledge.parsing.docx_sections import parse_docx
from knowledge.parsing.html_sections import parse_html
from knowledge.parsing.markdown_sections import parse_markdown
from knowledge.parsing.pdf_sections import parse_pdf
from knowledge.parsing.sections import ParsedFile, ParseError
from knowledge.parsing.text_decoding import UTF16_BOMS, decode_text
from knowledge.parsing.text_sections import parse_text


def _markdown(data: bytes, title: str) -> ParsedFile:
    text, warning = decode_text(data)
    parsed = parse_markdown(text, fallback_title=title)
    parsed.warnings.extend([warning] if warning else [])
    return parsed


def _text(data: bytes, title: str) -> ParsedFile:
    text, warning = decode_text(data)
    parsed = parse_text(text, fallback_title=title)
    parsed.warnings.extend([warning] if warning else [])
    return parsed


def _html(data: bytes, title: str) -> ParsedFile:
    if b"\x00" in data[:8192] and not data.startswith(UTF16_BOMS):
        raise ParseError("binary content (NUL bytes), not HTML")
    if EncodingDetector.find_declared_encoding(data, is_html=True):
        return parse_html(data, fallback_title=title)  # BeautifulSoup follows <meta charset> / <?xml encoding?>
    # No declared charset: decode like text. BeautifulSoup's statistical guess reads short Windows-1252
    # pages as another code page ("après" became "aprčs").
    text, warning = decode_text(data)
    parsed = parse_html(text, fallback_title=title)
    parsed.warnings.extend([warning] if warning else [])
    return parsed


def _pdf(data: bytes, title: str) -> ParsedFile:
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ParseError("not a PDF (no %PDF header)")
    return parse_pdf(data, fallback_title=title)


def _docx(data: bytes, title: str) -> ParsedFile:
    return parse_docx(data, fallback_title=title)


_PARSERS: dict[str, Callable[[bytes, str], ParsedFile]] = {
    ".md": _markdown,
    ".markdown": _markdown,
    ".txt": _text,
    ".text": _text,
    ".html": _html,
    ".htm": _html,
    ".pdf": _pdf,
    ".docx": _docx,
}
SUPPORTED_SUFFIXES = frozenset(_PARSERS)


def parse_bytes(data: bytes, name: str) -> ParsedFile:
    """Parse one file's bytes by its name's suffix.

    :raises ParseError: unsupported type, empty file, or content that is not what the suffix says.
    """
    suffix = PurePath(name).suffix.lower()
    parser = _PARSERS.get(suffix)
    if parser is None:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise ParseError(f"unsupported file type '{suffix or '(none)'}' (supported: {supported})")
    if not data.strip():
        raise ParseError("empty file")
    parsed = parser(data, PurePath(name).stem.replace("-", " ").replace("_", " "))
    if not parsed.sections:
        raise ParseError("no text found")
    return parsed
