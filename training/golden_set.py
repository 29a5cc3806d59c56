"""The fixed golden set of the evaluation gate: support questions over the bundled sample manuals,
each with the prompt the answer service would give the model (numbered sources, then the
question) and a reference answer with ``[n]`` citations, or "I don't know." where the sources do
not hold the answer. It is the same whatever dataset the candidate was trained on, so every
candidate is judged on the same questions. How it was made: ``training/golden/README.md``.

Usage::

    examples = load_golden_set()            # the default set, ``support-v1``
    golden_set_version()                    # "support-v1@<sha256 prefix>", recorded with the evaluation
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

from core.abstention import is_abstention
from core.errors import InvalidInputError

GOLDEN_SET = "support-v1"
KINDS = ("answer", "abstain")


def _read(name: str) -> bytes:
    path = resources.files("training") / "golden" / f"{name}.jsonl"
    try:
        return path.read_bytes()
    except OSError as error:
        raise InvalidInputError(f"no golden set {name!r} (training/golden/{name}.jsonl): {error}") from error


def golden_set_version(name: str = GOLDEN_SET) -> str:
    """``<name>@<first 12 hex digits of the file's SHA-256>``: which questions a result was measured on."""
    return f"{name}@{hashlib.sha256(_read(name)).hexdigest()[:12]}"


def load_golden_set(name: str = GOLDEN_SET) -> list[dict[str, Any]]:
    """The examples of ``training/golden/<name>.jsonl`` (see :func:`parse_golden_set`).

    :raises InvalidInputError: when the file is missing or an example is malformed.
    """
    return parse_golden_set(_read(name).decode("utf-8"), f"training/golden/{name}.jsonl")


def parse_golden_set(text: str, where: str) -> list[dict[str, Any]]:
    """Golden-set examples from JSON Lines, checked: unique ``id``, ``kind`` one of :data:`KINDS`,
    ``messages`` of system, user and assistant (the reference answer), each with text, and a
    reference that abstains exactly when ``kind`` is ``abstain``.

    :param where: names the file in error messages.
    :raises InvalidInputError: when an example is malformed or there is none.
    """
    examples = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        at = f"{where} line {number}"
        try:
            example = json.loads(line)
        except ValueError as error:
            raise InvalidInputError(f"{at}: not JSON ({error})") from error
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages) or [
                m.get("role") for m in messages] != ["system", "user", "assistant"] or not all(
                isinstance(m.get("content"), str) and m["content"].strip() for m in messages):
            raise InvalidInputError(f"{at}: messages must be system, user and assistant, each with text")
        if example.get("kind") not in KINDS:
            raise InvalidInputError(f"{at}: kind must be one of {KINDS}, not {example.get('kind')!r}")
        if (example["kind"] == "abstain") != is_abstention(messages[-1]["content"]):
            raise InvalidInputError(f"{at}: a reference abstains exactly when kind is 'abstain'")
        if not example.get("id") or example["id"] in seen:
            raise InvalidInputError(f"{at}: missing or repeated id {example.get('id')!r}")
        seen.add(example["id"])
        examples.append(example)
    if not examples:
        raise InvalidInputError(f"{where} holds no examples")
    return examples
