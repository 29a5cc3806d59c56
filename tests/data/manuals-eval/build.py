"""Builds this data set from the sample manuals: one corpus line per section (as the project's own
parsers read it), and hand-written customer questions whose gold section is named by heading.
Run: python tests/data/manuals-eval/build.py"""

from __future__ import annotations

import json
from pathlib import Path

from knowledge.parsing import parse_bytes

ROOT = Path(__file__).resolve().parents[3] / "knowledge" / "samples"
HERE = Path(__file__).parent

# (question, answer found verbatim in the gold section, file, last heading of the gold section, group)
QUESTIONS = [
    ("My router light is orange and not blinking, what's wrong?", "No internet connection", "nimbus-r7/user-guide.md", "Status light", "amber"),
    ("What does a steady amber LED mean on the R7?", "No internet connection", "nimbus-r7/user-guide.md", "Status light", "amber"),
    ("How do I wipe the router back to factory settings?", "10 seconds", "nimbus-r7/user-guide.md", "Factory reset", "reset"),
    ("How long must I hold the reset button?", "10 seconds", "nimbus-r7/user-guide.md", "Factory reset", "reset"),
    ("How many satellites can one mesh have?", "Up to 6 satellites", "nimbus-r7/user-guide.md", "Adding a mesh satellite", "mesh"),
    ("How do I pair an extra unit to extend coverage?", "Sync", "nimbus-r7/user-guide.md", "Adding a mesh satellite", "mesh"),
    ("Can visitors use my wifi without seeing my computers?", "Guest network", "nimbus-r7/user-guide.md", "Guest network", "guest"),
    ("When are automatic updates installed?", "between 02:00 and 04:00", "nimbus-r7/user-guide.md", "Firmware updates", "fw"),
    ("What is the web admin address?", "192.168.50.1", "nimbus-r7/user-guide.md", "First-time setup", "setup"),
    ("How do I block internet for my kids at night?", "bedtime schedule", "nimbus-r7/user-guide.md", "Parental controls", "kids"),
    ("What does error E31 mean?", "DHCP address pool is full", "nimbus-r7/troubleshooting.html", "Error codes", "e31"),
    ("The app shows E12 for my satellite", "too far from the main router", "nimbus-r7/troubleshooting.html", "Error codes", "e12"),
    ("My wifi is really slow, any tips?", "Smart Connect", "nimbus-r7/troubleshooting.html", "Slow Wi-Fi", "slow"),
    ("Router light blinking red after update", "recovery", "nimbus-r7/troubleshooting.html", "Recovery mode (blinking red light)", "red"),
    ("I get no internet at all, what should I check?", "WAN port", "nimbus-r7/troubleshooting.html", "No internet (solid amber light)", "noint"),
    ("How long is the router warranty?", "two years", "nimbus-r7/warranty.txt", "What Is Covered", "warranty"),
    ("Is lightning damage covered?", "lightning", "nimbus-r7/warranty.txt", "What Is Not Covered", "notcovered"),
    ("How do I descale the coffee machine?", "DescalePro", "lumen-brew3/manual.pdf", "Descaling", "descale"),
    ("How often does the Brew 3 need descaling?", "every 300 cups or 3 months", "lumen-brew3/manual.pdf", "Descaling", "descale"),
    ("Coffee machine shows E07", "Brew unit missing or blocked", "lumen-brew3/manual.pdf", "Troubleshooting", "e07"),
    ("What pressure does the pump have?", "15 bar", "lumen-brew3/manual.pdf", "Technical data", "tech"),
    ("How much water goes into a lungo?", "110 ml", "lumen-brew3/manual.pdf", "Making drinks", "drinks"),
    ("Which grind setting is the finest?", "Setting 1 is the finest", "lumen-brew3/manual.pdf", "Grind settings", "grind"),
    ("How do I clean the brew group?", "red PUSH lever", "lumen-brew3/manual.pdf", "Cleaning the brew unit", "brewunit"),
    ("Can I use pre-ground coffee?", "bypass", "lumen-brew3/faq.md", "Can I use ground coffee?", "ground"),
    ("How do I connect the coffee maker to my phone?", "Bluetooth", "lumen-brew3/faq.md", "Does the Brew 3 connect to Wi-Fi?", "app"),
    ("When should I change the water filter?", "50 litres", "lumen-brew3/faq.md", "Which water filter do I need?", "filter"),
    ("What must I remove before switching the machine on the first time?", "transport lock", "lumen-brew3/quick-start.docx", "Unpacking", "unpack"),
]
UNANSWERABLE = [
    "Does the R7 support 5G cellular backup?", "How do I make tea with the Brew 3?",
    "What is the capital of Australia?", "Can I return the router after 90 days for a refund?",
    "Does the coffee machine have a built-in milk fridge?", "How do I install the Nimbus VPN add-on?",
]


def main() -> None:
    corpus, ids = [], {}
    for path in sorted(p for p in ROOT.rglob("*") if p.suffix in {".md", ".html", ".txt", ".pdf", ".docx"}
                       and p.name != "README.md"):
        rel = str(path.relative_to(ROOT))
        parsed = parse_bytes(path.read_bytes(), path.name)
        for n, section in enumerate(parsed.sections):
            doc_id = f"{rel}#{n}"
            ids.setdefault((rel, section.heading_path[-1]), []).append(doc_id)
            row = {"id": doc_id, "title": " > ".join((parsed.title, *section.heading_path[-2:])),
                   "text": section.text}
            if section.page:
                row["page"] = section.page
            corpus.append(row)
    texts = {row["id"]: row["text"] for row in corpus}
    questions = []
    for n, (question, answer, rel, heading, group) in enumerate(QUESTIONS):
        gold = [i for i in ids[(rel, heading)] if answer.lower() in texts[i].lower()]
        if not gold:
            raise SystemExit(f"answer {answer!r} not found under {rel} > {heading}")
        questions.append({"id": f"q{n:03d}", "question": question, "answers": [answer], "gold_ids": gold,
                          "group": group})
    questions += [{"id": f"u{n:03d}", "question": q, "answers": [], "gold_ids": []}
                  for n, q in enumerate(UNANSWERABLE)]
    for name, rows in (("corpus.jsonl", corpus), ("questions.jsonl", questions)):
        (HERE / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(corpus)} sections, {len(questions)} questions")


if __name__ == "__main__":
    main()
