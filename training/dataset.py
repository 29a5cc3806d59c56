"""Training data from logged conversations: curated, PII-redacted, de-duplicated, split by
conversation, written as a versioned directory.

Which turns become examples (``build_dataset``):

- kept: an agent-corrected answer (the correction is the target, whatever the rating), a thumbs-up
  answer, and any other answered turn of a conversation marked resolved (unless the conversation
  was handed to a person: then the person resolved it);
- left out, counted by reason: thumbs-down without a correction, abstained or handed-off turns,
  conversations of users who opted out, turns whose sources can no longer be rendered, duplicates.

Each example holds the chat messages the answer prompt gives the model (system, then the user
message with the numbered sources and the question) and the target as the assistant message, so
the model learns to answer from the sources and cite them. Training may not import ``knowledge``,
so the prompt is rendered by a callable the caller passes in (the CLI uses the answer prompt and
the document store); the logged turn only keeps the ids of the chunks it was shown.

Layout written by ``write_dataset``::

    <out>/<version>/train.jsonl, validation.jsonl, test.jsonl, manifest.json

Usage::

    built = build_dataset(session, config=DatasetConfig(tenant_id="acme"), render=renderer)
    path = write_dataset(built, Path("data/datasets"))
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from core.db.queries.training import TrainingCandidate, training_candidates
from core.errors import InvalidInputError
from training.pii import DETECTION_REPORT, PiiRedactor

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"
_CITATION = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class RenderedPrompt:
    """The messages before the answer (``role``/``content`` dicts) and how many sources they number."""

    messages: list[dict[str, str]]
    sources: int


PromptRenderer = Callable[[str, list[str]], RenderedPrompt | None]
"""(redacted question, retrieved chunk ids in the order shown) → the prompt, or None when the
sources cannot be reproduced (a chunk was deleted since)."""


@dataclass
class DatasetConfig:
    """What to take from the log and how to split it."""

    tenant_id: str = field(metadata={"help": "the tenant whose conversations are used"})
    since: datetime | None = field(default=None, metadata={"help": "only turns created at or after this time"})
    validation_fraction: float = field(default=0.1, metadata={"help": "share of conversations for validation"})
    test_fraction: float = field(default=0.1, metadata={"help": "share of conversations held out for the gate"})
    seed: int = field(default=0, metadata={"help": "seed of the conversation shuffle before splitting"})

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise ValueError("tenant_id must not be empty")
        for name in ("validation_fraction", "test_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be within [0, 1), not {getattr(self, name)}")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("validation_fraction + test_fraction must leave some conversations for training")


@dataclass(frozen=True)
class Example:
    id: str
    turn_id: str
    conversation_id: str
    kind: str
    """``corrected``, ``positive`` or ``resolved``"""
    messages: list[dict[str, str]]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BuiltDataset:
    config: DatasetConfig
    splits: dict[str, list[Example]]
    excluded: Counter[str]
    redactions: Counter[str]

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(examples) for name, examples in self.splits.items()}


def select_target(candidate: TrainingCandidate) -> tuple[str, str] | str:
    """(kind, target text) for a turn that becomes an example, else the reason it is left out."""
    turn, feedback = candidate.turn, candidate.feedback
    if candidate.opted_out:
        return "opted_out"
    if turn.abstained or turn.handoff_reason:
        return "abstained_or_handed_off"
    if feedback is not None and feedback.corrected_answer and feedback.corrected_answer.strip():
        return "corrected", feedback.corrected_answer.strip()
    if feedback is not None and feedback.rating == "down":
        return "negative"
    if not (turn.answer or "").strip():
        return "empty_answer"
    if feedback is not None and feedback.rating == "up":
        return "positive", (turn.answer or "").strip()
    if candidate.conversation_resolved and candidate.conversation.handoff:
        return "resolved_by_a_person"  # a handed-off conversation was resolved by the agent, not this answer
    if candidate.conversation_resolved:
        return "resolved", (turn.answer or "").strip()
    return "no_signal"


def build_dataset(session: Session, *, config: DatasetConfig, render: PromptRenderer,
                  redactor: PiiRedactor | None = None) -> BuiltDataset:
    """Select, redact, render, de-duplicate and split the tenant's logged turns.

    :raises InvalidInputError: when no turn qualifies (the message says what was left out and why).
    """
    redactor = redactor or PiiRedactor()
    excluded: Counter[str] = Counter()
    redactions: Counter[str] = Counter()
    seen: set[str] = set()
    examples: list[Example] = []
    candidates = training_candidates(session, tenant_id=config.tenant_id, since=config.since)
    for candidate in candidates:
        chosen = select_target(candidate)
        if isinstance(chosen, str):
            excluded[chosen] += 1
            continue
        kind, target = chosen
        # The prompt was built from the standalone query (follow-ups rewritten without the history),
        # and an example carries no history, so that is the question the model learns from.
        asked = candidate.turn.standalone_query or candidate.turn.question
        question, answer = redactor.redact(asked), redactor.redact(target)
        redactions.update(question.found)
        redactions.update(answer.found)
        chunk_ids = [str(chunk["chunk_id"]) for chunk in candidate.turn.retrieved if chunk.get("chunk_id")]
        prompt = render(question.text, chunk_ids)
        if prompt is None:
            excluded["sources_unavailable"] += 1
            continue
        if any(int(number) > prompt.sources for number in _CITATION.findall(answer.text)):
            excluded["citation_out_of_range"] += 1
            continue
        key = _dedupe_key(prompt.messages[-1]["content"], answer.text)
        if key in seen:
            excluded["duplicate"] += 1
            continue
        seen.add(key)
        messages = [*prompt.messages, {"role": "assistant", "content": answer.text}]
        examples.append(Example(id=key[:16], turn_id=str(candidate.turn.id),
                                conversation_id=str(candidate.turn.conversation_id), kind=kind, messages=messages))
    if not examples:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(excluded.items())) or "no answered turns"
        raise InvalidInputError(f"no training examples for tenant {config.tenant_id!r} among {len(candidates)} "
                                f"answered turns ({reasons})")
    return BuiltDataset(config=config, splits=split_by_conversation(examples, config), excluded=excluded,
                        redactions=redactions)


def _dedupe_key(user_message: str, target: str) -> str:
    normalised = " ".join(user_message.lower().split()) + "\x00" + " ".join(target.lower().split())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def split_by_conversation(examples: list[Example], config: DatasetConfig) -> dict[str, list[Example]]:
    """Seeded split that keeps every conversation on one side. With fewer than three conversations
    everything is training data (there is nothing to hold out)."""
    conversations = sorted({example.conversation_id for example in examples})
    random.Random(config.seed).shuffle(conversations)
    n = len(conversations)
    n_test = max(1, round(n * config.test_fraction)) if n >= 3 and config.test_fraction > 0 else 0
    n_validation = max(1, round(n * config.validation_fraction)) if n >= 3 and config.validation_fraction > 0 else 0
    n_validation = min(n_validation, n - n_test - 1) if n_validation else 0
    side = {cid: "test" for cid in conversations[:n_test]}
    side |= {cid: "validation" for cid in conversations[n_test:n_test + n_validation]}
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for example in examples:
        splits[side.get(example.conversation_id, "train")].append(example)
    return splits


def write_dataset(built: BuiltDataset, out_dir: Path) -> Path:
    """Write ``<out_dir>/<version>/`` atomically (a temporary sibling renamed into place); the
    version is the UTC time plus the first characters of the content hash.

    :returns: the dataset directory.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".dataset-", dir=out_dir))
    try:
        digest = hashlib.sha256()
        for name in SPLITS:
            lines = [json.dumps(example.as_json(), ensure_ascii=False, sort_keys=True) + "\n"
                     for example in built.splits[name]]
            content = "".join(lines).encode("utf-8")
            digest.update(name.encode() + b"\x00" + content)
            (staging / f"{name}.jsonl").write_bytes(content)
        created = datetime.now(UTC)
        version = f"ds-{created:%Y%m%dT%H%M%SZ}-{digest.hexdigest()[:8]}"
        manifest = {
            "version": version,
            "created_at": created.isoformat(),
            "tenant_id": built.config.tenant_id,
            "since": built.config.since.isoformat() if built.config.since else None,
            "seed": built.config.seed,
            "counts": built.counts,
            "kinds": dict(Counter(e.kind for split in built.splits.values() for e in split)),
            "excluded": dict(built.excluded),
            "pii_redactions": dict(built.redactions),
            "pii_detection": DETECTION_REPORT,
            "content_sha256": digest.hexdigest(),
            "source_turn_ids": {name: [e.turn_id for e in built.splits[name]] for name in SPLITS},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        target = out_dir / version
        os.replace(staging, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    """:raises InvalidInputError: when ``dataset_dir`` is not a dataset written by :func:`write_dataset`."""
    path = Path(dataset_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidInputError(f"{dataset_dir} is not a training dataset (cannot read {MANIFEST}: {error})") from error
    if not isinstance(manifest, dict) or "content_sha256" not in manifest:
        raise InvalidInputError(f"{path} is not a dataset manifest")
    return manifest


def load_split(dataset_dir: Path, split: str) -> list[dict[str, Any]]:
    """The examples of one split, as written (``messages`` ends with the assistant target)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    read_manifest(dataset_dir)
    path = Path(dataset_dir) / f"{split}.jsonl"
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as error:
        raise InvalidInputError(f"cannot read {path}: {error}") from error


def latest_dataset(root: Path) -> Path:
    """The newest dataset directory under ``root`` (versions sort by time).

    :raises InvalidInputError: when there is none.
    """
    versions = sorted(p for p in Path(root).glob("ds-*") if (p / MANIFEST).is_file()) if Path(root).is_dir() else []
    if not versions:
        raise InvalidInputError(f"no dataset under {root}; build one with `supportbot train dataset`")
    return versions[-1]
