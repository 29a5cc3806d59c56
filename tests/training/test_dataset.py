"""The dataset builder: which turns become examples, PII redaction, de-duplication, the split and
the versioned directory with its manifest."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import Session

from core.db.migrate import current_revision, downgrade, head_revision, upgrade
from core.errors import InvalidInputError
from training.dataset import DatasetConfig, build_dataset, load_split, read_manifest, write_dataset
from training.pii import PiiRedactor

from .conftest import TENANT, ConversationLog, render


@pytest.fixture(scope="module")
def redactor() -> PiiRedactor:
    redactor = PiiRedactor()
    redactor.warm_up()
    return redactor


def test_migration_0002_upgrades_and_downgrades(engine) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import inspect

    assert current_revision(engine) == head_revision()
    assert "training_opt_out" in inspect(engine).get_table_names()
    downgrade(engine, "0001")
    assert "training_opt_out" not in inspect(engine).get_table_names()
    upgrade(engine, "0002")
    assert current_revision(engine) == "0002" and "training_opt_out" in inspect(engine).get_table_names()
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_selection_keeps_positive_corrected_resolved_and_leaves_out_the_rest(
        session: Session, conversation_log: ConversationLog, redactor: PiiRedactor) -> None:
    built = build_dataset(session, config=DatasetConfig(tenant_id=TENANT), render=render, redactor=redactor)
    turn_ids = {e.turn_id for split in built.splits.values() for e in split}
    assert turn_ids == {str(t) for t in conversation_log.included.values()}
    assert not turn_ids & {str(t) for t in conversation_log.excluded.values()}
    assert built.excluded == {"negative": 1, "abstained_or_handed_off": 1, "opted_out": 1, "duplicate": 1,
                              "no_signal": 1, "sources_unavailable": 1, "resolved_by_a_person": 1}
    examples = {e.turn_id: e for split in built.splits.values() for e in split}
    corrected = examples[str(conversation_log.included["corrected_phone"])]
    assert corrected.kind == "corrected"
    assert corrected.messages[-1] == {"role": "assistant", "content": "Open Settings > System > Update [1]."}
    assert examples[str(conversation_log.included["resolved_conversation"])].kind == "resolved"
    first = examples[str(conversation_log.included["positive_email"])]
    assert [m["role"] for m in first.messages] == ["system", "user", "assistant"]
    assert "[2] The Wi-Fi password" in first.messages[1]["content"]  # the sources it was shown, numbered


def test_pii_is_redacted(session: Session, conversation_log: ConversationLog, redactor: PiiRedactor) -> None:
    built = build_dataset(session, config=DatasetConfig(tenant_id=TENANT), render=render, redactor=redactor)
    text = json.dumps([e.messages for split in built.splits.values() for e in split])
    for secret in ("jane.doe@example.com", "555-0132", "4111 1111 1111 1111", "192.168.1.20", "221B Baker Street"):
        assert secret not in text
    for placeholder in ("<EMAIL>", "<PHONE>", "<CARD_NUMBER>", "<IP_ADDRESS>", "<ADDRESS>"):
        assert placeholder in text
    # the duplicate of the first turn is redacted too before it is recognised as a duplicate
    assert built.redactions == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1, "CREDIT_CARD": 1, "IP_ADDRESS": 1,
                                "POSTAL_ADDRESS": 1}


@pytest.mark.parametrize("text, kept", [
    ("card 4111 1111 1111 1112 fails Luhn", "4111 1111 1111 1112"),
    ("firmware 2.4.1 on port 8080, step 3 of 10", "firmware 2.4.1 on port 8080, step 3 of 10"),
    ("my name is Jane Doe", "Jane Doe"),  # names need an NER model: documented as not detected
])
def test_redaction_leaves_what_it_does_not_detect(redactor: PiiRedactor, text: str, kept: str) -> None:
    assert kept in redactor.redact(text).text


def test_split_keeps_conversations_whole_and_is_seeded(
        session: Session, conversation_log: ConversationLog, redactor: PiiRedactor) -> None:
    config = DatasetConfig(tenant_id=TENANT, validation_fraction=0.2, test_fraction=0.2, seed=3)
    built = build_dataset(session, config=config, render=render, redactor=redactor)
    sides: dict[str, set[str]] = {}
    for name, examples in built.splits.items():
        for example in examples:
            sides.setdefault(example.conversation_id, set()).add(name)
    assert all(len(names) == 1 for names in sides.values())
    assert all(built.counts[name] > 0 for name in ("train", "validation", "test"))
    again = build_dataset(session, config=config, render=render, redactor=redactor)
    assert again.splits == built.splits
    other = build_dataset(session, config=replace(config, seed=4), render=render, redactor=redactor)
    assert sum(other.counts.values()) == sum(built.counts.values())


def test_written_dataset_has_manifest_with_counts_hash_and_turn_ids(
        session: Session, conversation_log: ConversationLog, redactor: PiiRedactor, tmp_path: Path) -> None:
    built = build_dataset(session, config=DatasetConfig(tenant_id=TENANT), render=render, redactor=redactor)
    path = write_dataset(built, tmp_path / "datasets")
    manifest = read_manifest(path)
    assert manifest["version"] == path.name and path.name.startswith("ds-")
    assert manifest["counts"] == built.counts
    assert len(manifest["content_sha256"]) == 64 and manifest["content_sha256"][:8] in path.name
    assert sorted(t for ids in manifest["source_turn_ids"].values() for t in ids) == sorted(
        str(t) for t in conversation_log.included.values())
    assert manifest["pii_detection"]["not_detected"]
    assert len(load_split(path, "train")) == built.counts["train"]
    again = write_dataset(built, tmp_path / "datasets2")
    assert read_manifest(again)["content_sha256"] == manifest["content_sha256"]


def test_empty_or_negative_only_log_is_a_clear_error(session: Session, redactor: PiiRedactor) -> None:
    from core.db.queries.tenants import create_tenant

    create_tenant(session, tenant_id=TENANT)
    with pytest.raises(InvalidInputError, match=r"no training examples .*\(no answered turns\)"):
        build_dataset(session, config=DatasetConfig(tenant_id=TENANT), render=render, redactor=redactor)


def test_only_negative_feedback_names_the_reason(
        session: Session, conversation_log: ConversationLog, redactor: PiiRedactor) -> None:
    with pytest.raises(InvalidInputError, match="negative: 1"):
        build_dataset(session, config=DatasetConfig(tenant_id="other"), render=lambda q, ids: None,
                      redactor=redactor)


@pytest.mark.parametrize("kwargs, field", [({"tenant_id": ""}, "tenant_id"),
                                           ({"tenant_id": "a", "test_fraction": 1.5}, "test_fraction"),
                                           ({"tenant_id": "a", "test_fraction": 0.5, "validation_fraction": 0.5},
                                            "validation_fraction")])
def test_config_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DatasetConfig(**kwargs)  # type: ignore[arg-type]
