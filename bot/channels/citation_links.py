"""Citations as links a person can click, in each channel's markup: Slack mrkdwn
(``<url|Title § Section p.3>``) and Markdown (``[Title § Section p.3](url)``, Teams)."""

from __future__ import annotations

import re

from core.schemas import Citation

_SAFE_SCHEMES = ("https://", "http://")


def citation_label(citation: Citation) -> str:
    """``Title § Section p.N``: the document, its deepest heading and the page, as far as known.

    Usage::

        citation_label(Citation(number=1, chunk_id="c", title="Nimbus R7 manual",
                                heading_path=["Setup", "Factory reset"], page=12, snippet="..."))
        # -> "Nimbus R7 manual § Factory reset p.12"
    """
    label = citation.title or citation.source or citation.chunk_id
    if citation.heading_path and citation.heading_path[-1] != citation.title:
        label += f" § {citation.heading_path[-1]}"
    if citation.page is not None:
        label += f" p.{citation.page}"
    return " ".join(label.split())


def _link_target(citation: Citation) -> str | None:
    url = (citation.url or citation.source or "").strip()
    return url if url.lower().startswith(_SAFE_SCHEMES) and not re.search(r"\s", url) else None


def slack_escape(text: str) -> str:
    """Slack's three control characters, escaped as Slack documents."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_citation(citation: Citation) -> str:
    """``[n] <url|label>``, or ``[n] label`` when the source has no web address."""
    label = slack_escape(citation_label(citation)).replace("|", "¦")
    url = _link_target(citation)
    if url is None:
        return f"[{citation.number}] {label}"
    return f"[{citation.number}] <{slack_escape(url).replace('|', '%7C')}|{label}>"


def markdown_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", text)


def markdown_citation(citation: Citation) -> str:
    """``[n] [label](url)``, or ``[n] label`` when the source has no web address."""
    label = markdown_escape(citation_label(citation))
    url = _link_target(citation)
    if url is None:
        return f"\\[{citation.number}\\] {label}"
    return f"\\[{citation.number}\\] [{label}]({url.replace(')', '%29').replace('(', '%28')})"
