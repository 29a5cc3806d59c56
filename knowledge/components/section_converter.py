from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import ByteStream

from knowledge.parsing import parse_bytes
from knowledge.parsing.sections import ParseError


@component
class SectionConverter:
    """Turns files (PDF, HTML, Markdown, DOCX, text) into one Document per section.

    Each Document's meta carries the source's meta (``source``, ``tenant``, ``product``, ...) plus
    ``title``, ``heading_path`` and, for PDFs, ``page``. A file that cannot be read becomes an entry
    of ``failures`` (source and reason) and does not stop the others.

    Usage::

        converter = SectionConverter()
        result = converter.run(sources=[ByteStream(data, meta={"source": "guide.md"})])
        result["documents"], result["failures"]
    """

    def __init__(self, max_file_bytes: int = 100 * 1024 * 1024) -> None:
        if max_file_bytes < 1:
            raise ValueError("max_file_bytes must be positive")
        self.max_file_bytes = max_file_bytes

    @component.output_types(documents=list[Document], failures=list[dict[str, str]], warnings=list[dict[str, str]])
    def run(self, sources: list[ByteStream]) -> dict[str, Any]:
        """
        :param sources: the files; ``meta["source"]`` names each (a path or URL).
        :returns: ``documents`` (one per section), ``failures`` and ``warnings`` (source, reason).
        """
        documents: list[Document] = []
        failures: list[dict[str, str]] = []
        warnings: list[dict[str, str]] = []
        for stream in sources:
            name = str(stream.meta.get("source") or stream.meta.get("file_path") or "<unnamed>")
            if len(stream.data) > self.max_file_bytes:
                failures.append({"source": name, "reason": (
                    f"file is {len(stream.data) / 1_048_576:.1f} MB, over the limit of "
                    f"{self.max_file_bytes / 1_048_576:.1f} MB (SUPPORTBOT_CHUNKING__MAX_FILE_BYTES)")})
                continue
            try:
                parsed = parse_bytes(stream.data, str(stream.meta.get("file_name") or name))
            except ParseError as exc:
                failures.append({"source": name, "reason": str(exc)})
                continue
            except RecursionError:
                failures.append({"source": name, "reason": "document nesting too deep to parse"})
                continue
            warnings.extend({"source": name, "reason": warning} for warning in parsed.warnings)
            for position, section in enumerate(parsed.sections):
                meta = {**stream.meta, "source": name, "title": parsed.title,
                        "heading_path": list(section.heading_path), "section_index": position}
                if section.page is not None:
                    meta["page"] = section.page
                documents.append(Document(content=section.text, meta=meta))
        return {"documents": documents, "failures": failures, "warnings": warnings}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, max_file_bytes=self.max_file_bytes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SectionConverter:
        return default_from_dict(cls, data)
