"""Corpus of the manuals-eval set: one line per section of the sample manuals, text as the project's
parsers extract it (pieces of one heading path, e.g. a PDF section spanning pages, are joined)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from knowledge.parsing import parse_bytes

SAMPLES = Path(__file__).resolve().parents[3] / "knowledge" / "samples"
DOCS = {  # file -> clean document title
    "nimbus-r7/user-guide.md": "Nimbus R7 Mesh Router User Guide",
    "nimbus-r7/troubleshooting.html": "Nimbus R7 Troubleshooting",
    "nimbus-r7/warranty.txt": "Nimbus R7 Limited Warranty",
    "lumen-brew3/manual.pdf": "Lumen Brew 3 Owner's Manual",
    "lumen-brew3/quick-start.docx": "Lumen Brew 3 Quick Start",
    "lumen-brew3/faq.md": "Lumen Brew 3 FAQ",
}
CANONICAL = "https://help.nimbus-networks.example/r7/troubleshooting"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def html_anchors(path: Path) -> dict[str, str]:
    soup = BeautifulSoup(path.read_bytes(), "lxml")
    return {" ".join(h.get_text(" ").split()): h["id"] for h in soup.find_all(["h1", "h2", "h3"]) if h.get("id")}


def build() -> list[dict]:
    rows: list[dict] = []
    for rel, doc_title in DOCS.items():
        path = SAMPLES / rel
        parsed = parse_bytes(path.read_bytes(), path.name)
        anchors = html_anchors(path) if path.suffix == ".html" else {}
        merged: dict[tuple[str, ...], dict] = {}
        for section in parsed.sections:
            entry = merged.get(section.heading_path)
            if entry:
                entry["text"] += "\n" + section.text
                continue
            headings = [h for h in section.heading_path
                        if h.lower() not in {parsed.title.lower(), doc_title.lower(), "nimbus r7 troubleshooting"}]
            doc_id = f"{rel.rsplit('.', 1)[0]}#"
            if not headings:
                doc_id += "intro"
            elif anchors:
                doc_id += anchors[headings[-1]]
            else:
                doc_id += slug(headings[-1])
            row: dict = {"id": doc_id, "title": " > ".join([doc_title, *headings]), "text": section.text}
            if anchors:
                row["url"] = f"{CANONICAL}#{anchors[headings[-1]]}" if headings else CANONICAL
            if section.page is not None:
                row["page"] = section.page
            merged[section.heading_path] = row
        rows.extend(merged.values())
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate corpus ids"
    return rows


if __name__ == "__main__":
    for r in build():
        print(r["id"], "|", r["title"], "|", r.get("page", ""), r.get("url", ""))
