from __future__ import annotations

from bot.channels.citation_links import citation_label, markdown_citation, slack_citation
from core.schemas import Citation


def cite(**fields: object) -> Citation:
    base: dict[str, object] = {"number": 2, "chunk_id": "c1", "title": "Nimbus R7 User Guide",
                               "heading_path": ["Nimbus R7 User Guide", "Factory reset"], "page": 12,
                               "url": "https://help.example/r7/guide#reset", "snippet": "Hold the button."}
    return Citation.model_validate({**base, **fields})


def test_label_names_document_section_and_page() -> None:
    assert citation_label(cite()) == "Nimbus R7 User Guide § Factory reset p.12"
    assert citation_label(cite(heading_path=["Nimbus R7 User Guide"], page=None)) == "Nimbus R7 User Guide"


def test_slack_link_and_escaping() -> None:
    assert slack_citation(cite()) == "[2] <https://help.example/r7/guide#reset|Nimbus R7 User Guide § Factory reset p.12>"
    hostile = cite(title="A <b> & c|d", url="https://x.example/a|b>c", heading_path=[], page=None)
    assert slack_citation(hostile) == "[2] <https://x.example/a%7Cb&gt;c|A &lt;b&gt; &amp; c¦d>"


def test_unsafe_or_missing_urls_are_not_linked() -> None:
    assert slack_citation(cite(url="javascript:alert(1)", source="guide.md")) == \
        "[2] Nimbus R7 User Guide § Factory reset p.12"
    assert markdown_citation(cite(url=None, source="manual.pdf")) == "\\[2\\] Nimbus R7 User Guide § Factory reset p.12"
    # a web source stands in for a missing url
    assert slack_citation(cite(url=None, source="https://help.example/faq")).startswith("[2] <https://help.example/faq|")


def test_markdown_link() -> None:
    assert markdown_citation(cite(title="Guide [v2]", heading_path=[], page=3, url="https://h.example/a_(b)")) == \
        "\\[2\\] [Guide \\[v2\\] p.3](https://h.example/a_%28b%29)"
