"""Writes tests/data/manuals-eval/{corpus,questions}.jsonl."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_corpus import build
from questions_src import ANSWERABLE, PREFIX, UNANSWERABLE

OUT = Path(__file__).resolve().parent


def full(gid: str) -> str:
    short, anchor = gid.split("#", 1)
    return f"{PREFIX[short]}#{anchor}"


corpus = build()
questions = []
n = 0
for group, phrasings, answers, gold in ANSWERABLE:
    for q in phrasings:
        n += 1
        questions.append({"id": f"q{n:03d}", "question": q, "answers": answers,
                          "gold_ids": [full(g) for g in gold], "group": group})
for m, q in enumerate(UNANSWERABLE, start=1):
    questions.append({"id": f"u{m:03d}", "question": q, "answers": [], "gold_ids": []})
OUT.mkdir(parents=True, exist_ok=True)
for name, rows in (("corpus.jsonl", corpus), ("questions.jsonl", questions)):
    (OUT / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
print(len(corpus), "sections,", n, "answerable,", len(UNANSWERABLE), "unanswerable,", len(ANSWERABLE), "groups")
