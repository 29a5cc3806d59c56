"""Validates tests/data/manuals-eval: JSON per line, unique ids, gold ids exist, every answer appears
(case-insensitive) in the text of at least one gold section, unanswerable rows are empty."""
import json
import sys
from collections import Counter
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent))
errors = []


def rows(name):
    out = []
    for i, line in enumerate((root / name).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"{name}:{i}: blank line")
            continue
        out.append(json.loads(line))
    return out


corpus, questions = rows("corpus.jsonl"), rows("questions.jsonl")
for r in corpus:
    if not {"id", "title", "text"} <= r.keys() or not r["text"].strip():
        errors.append(f"corpus row incomplete: {r.get('id')}")
    if not set(r) <= {"id", "title", "text", "url", "page"}:
        errors.append(f"corpus row has unknown keys: {r['id']}")
for name, items in (("corpus", corpus), ("questions", questions)):
    dup = [k for k, c in Counter(r["id"] for r in items).items() if c > 1]
    if dup:
        errors.append(f"duplicate {name} ids: {dup}")
texts = {r["id"]: r["text"] for r in corpus}
answerable = unanswerable = 0
groups = Counter()
for q in questions:
    if not set(q) <= {"id", "question", "answers", "gold_ids", "group"} or not q["question"].strip():
        errors.append(f"{q['id']}: bad keys or empty question")
    gold = q.get("gold_ids") or []
    if not gold:
        unanswerable += 1
        if q.get("answers"):
            errors.append(f"{q['id']}: answers without gold ids")
        continue
    answerable += 1
    if q.get("group"):
        groups[q["group"]] += 1
    missing = [g for g in gold if g not in texts]
    if missing:
        errors.append(f"{q['id']}: unknown gold ids {missing}")
        continue
    if not q.get("answers"):
        errors.append(f"{q['id']}: no answers")
    for a in q.get("answers", []):
        if not any(a.lower() in texts[g].lower() for g in gold):
            errors.append(f"{q['id']}: answer {a!r} not in any gold section {gold}")
used = {g for q in questions for g in q.get("gold_ids", [])}
print(f"corpus {len(corpus)} sections ({len(used)} used as gold); questions {answerable} answerable "
      f"+ {unanswerable} unanswerable; {len(groups)} groups, {sum(1 for c in groups.values() if c > 1)} "
      f"paraphrase groups")
print("\n".join(errors) or "OK")
sys.exit(1 if errors else 0)
