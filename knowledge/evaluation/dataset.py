from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InvalidInputError


@dataclass(frozen=True)
class CorpusEntry:
    id: str
    title: str
    text: str
    url: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    gold_ids: list[str] = field(default_factory=list)
    group: str | None = None


@dataclass(frozen=True)
class EvalDataset:
    name: str
    corpus: list[CorpusEntry]
    questions: list[Question]


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    if not path.is_file():
        raise InvalidInputError(f"{path}: file not found")
    rows = []
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise InvalidInputError(f"{path}:{number}: expected a JSON object")
            missing = [key for key in required if key not in row]
            if missing:
                raise InvalidInputError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
            rows.append(row)
    return rows


def load_dataset(directory: Path | str) -> EvalDataset:
    """Read ``corpus.jsonl`` and ``questions.jsonl``.

    :raises InvalidInputError: naming the file and line of any malformed row or unknown gold id.
    """
    root = Path(directory)
    corpus = [CorpusEntry(id=str(r["id"]), title=str(r["title"]), text=str(r["text"]), url=r.get("url"),
                          page=r.get("page"))
              for r in _read_jsonl(root / "corpus.jsonl", ("id", "title", "text"))]
    known = {entry.id for entry in corpus}
    questions = []
    for number, r in enumerate(_read_jsonl(root / "questions.jsonl", ("id", "question")), start=1):
        gold = [str(g) for g in r.get("gold_ids") or []]
        unknown = [g for g in gold if g not in known]
        if unknown:
            raise InvalidInputError(f"{root / 'questions.jsonl'}:{number}: unknown gold id(s) {unknown[:3]}")
        questions.append(Question(id=str(r["id"]), question=str(r["question"]),
                                  answers=[str(a) for a in r.get("answers") or []], gold_ids=gold,
                                  group=r.get("group")))
    return EvalDataset(name=root.resolve().name, corpus=corpus, questions=questions)
