"""Format parsers that turn one file into its sections (heading path, text, page).

Haystack's stock converters flatten a document into one text and lose its headings; answers must
cite a section and a page, so each format is parsed for its structure here, and the Haystack
component :class:`knowledge.section_converter.SectionConverter` wraps these functions.
"""

from knowledge.parsing.dispatch import SUPPORTED_SUFFIXES, parse_bytes
from knowledge.parsing.sections import ParsedFile, Section

__all__ = ["SUPPORTED_SUFFIXES", "ParsedFile", "Section", "parse_bytes"]
