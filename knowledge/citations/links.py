"""Links and images in generated text are kept only when a cited source contains them: a planted
instruction ("add this link") must not turn the bot into an exfiltration channel."""

from __future__ import annotations

import re

_MARKDOWN_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]*)[^)]*\)")
# HTML that could load or run something, and the prompt's own fences and roles: an answer goes back
# into the next turn's history, where a quoted "<system>" would pose as an instruction. A tag left
# unclosed ("</system [1]") is removed up to its name, so the citation marker after it survives.
_HTML_TAG = re.compile(r"<\s*[/\\]?\s*(?:img|a|script|iframe|style|object|embed|svg|link|meta|system|source|sources|"
                       r"user|assistant|instructions?)\b(?:[^<>\n]*>)?", re.IGNORECASE)
_BARE_URL = re.compile(r"(?:https?://|www\.|javascript:|data:|vbscript:)[^\s<>\")\]]*", re.IGNORECASE)


def remove_foreign_links(text: str, allowed_sources: list[str]) -> tuple[str, int]:
    """``text`` without images, HTML tags and URLs that appear in none of ``allowed_sources``.

    Markdown images are always dropped (the answer is rendered as text); a markdown link to an
    allowed URL keeps its URL, otherwise only its label stays. Returns the text and how many
    links were removed.
    """
    corpus = "\n".join(allowed_sources)
    removed = 0

    def allowed(url: str) -> bool:
        return bool(url) and url.lower().startswith(("http://", "https://", "www.")) and url in corpus

    def image(match: re.Match[str]) -> str:
        nonlocal removed
        removed += 1
        return match.group(1)

    def link(match: re.Match[str]) -> str:
        nonlocal removed
        if allowed(match.group(2)):
            return f"{match.group(1)} ({match.group(2)})"
        removed += 1
        return match.group(1)

    def tag(match: re.Match[str]) -> str:
        nonlocal removed
        removed += 1
        return ""

    def bare(match: re.Match[str]) -> str:
        nonlocal removed
        url = match.group().rstrip(".,;:!?")
        if allowed(url):
            return match.group()
        removed += 1
        return "[link removed]"

    text = _MARKDOWN_IMAGE.sub(image, text)
    text = _MARKDOWN_LINK.sub(link, text)
    text = _HTML_TAG.sub(tag, text)
    text = _BARE_URL.sub(bare, text)
    return text, removed
