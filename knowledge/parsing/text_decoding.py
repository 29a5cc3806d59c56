from __future__ import annotations

import codecs

from knowledge.parsing.sections import ParseError

# Windows "Unicode" text is UTF-16 with a byte order mark: its NUL bytes are text, not binary.
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

# Control characters other than tab/newline/carriage return/form feed mark binary content.
_ALLOWED_CONTROL = {9, 10, 12, 13}


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Decode bytes as UTF-16 when they start with its byte order mark, else as UTF-8 (with or
    without BOM), else Windows-1252; reject binary content.

    :returns: the text and a warning when a fallback encoding was used.
    :raises ParseError: when the bytes do not look like text.
    """
    if data.startswith(UTF16_BOMS):
        try:
            text, warning = data.decode("utf-16"), None
        except UnicodeDecodeError as exc:
            raise ParseError(f"not valid UTF-16 despite its byte order mark (byte {exc.start})") from exc
    elif b"\x00" in data[:8192]:
        raise ParseError("binary content (NUL bytes), not text")
    else:
        try:
            text, warning = data.decode("utf-8-sig"), None
        except UnicodeDecodeError as exc:
            text = data.decode("cp1252", errors="replace")
            warning = f"not valid UTF-8 (byte {exc.start}); decoded as Windows-1252"
    sample = text[:8192]
    control = sum(1 for ch in sample if ord(ch) < 32 and ord(ch) not in _ALLOWED_CONTROL)
    if sample and (control / len(sample) > 0.01 or sample.count("\ufffd") / len(sample) > 0.05):
        raise ParseError("binary content, not text")
    return text, warning
