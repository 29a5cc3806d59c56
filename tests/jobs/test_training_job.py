"""The worker's scheduled retraining, once through the real path: the sample manuals indexed by the
scheduled re-index job, a conversation log over their chunks, then the scheduled train job (the
function and arguments APScheduler stored) through the job runner: dataset -> a few LoRA steps
of the real SmolLM2-135M on the CPU -> evaluation gate -> adapter registry. Then the runs after
it are skipped until enough new examples arrive.

About 2-3 minutes on two shared cores: one torch thread, 60-word chunks, 384-token examples,
4 training steps, 24 generated tokens per held-out answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import Session

from core.db.engine import open_session
from core.db.queries import jobs as job_queries
from core.db.queries.conversations import create_conversation
from core.db.queries.feedback import save_feedback
from core.db.queries.tenants import create_tenant
from core.db.tables import JobRecord
from core.settings import ChunkingSettings, GeneratorSettings, LocalGeneratorSettings, Settings, WorkerSettings
from jobs.runner import JobRunner
from jobs.scheduler import build_scheduler
from knowledge.document_store import build_document_store
from knowledge.retrieval import metadata_filters
from tests.conftest import SAMPLES
from tests.torch_threads import one_torch_thread
from tests.training.conftest import TENANT, ConversationLog, log_turn

pytestmark = pytest.mark.slow

CONVERSATIONS, TURNS = 10, 5  # the default split holds out one conversation: 5 examples, the gate's minimum
PHRASINGS = ("What does the manual say about", "Can you explain", "I need help with", "Tell me about",
             "How does it work:", "Question on", "Quick one about", "Please clarify", "Help with", "Info on")


@pytest.fixture
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture
def settings(db_settings: Settings, tmp_path: Path) -> Settings:
    config = tmp_path / "lora.yaml"
    config.write_text("lora_rank: 8\nlora_alpha: 16\nlora_dropout: 0.0\nmax_seq_length: 384\n"
                      "learning_rate: 1.0e-3\nthreads: 1\n", encoding="utf-8")
    return db_settings.model_copy(update={
        "chunking": ChunkingSettings(max_words=60),
        "generator": GeneratorSettings(max_new_tokens=24, local=LocalGeneratorSettings(threads=1)),
        "worker": WorkerSettings.model_validate({
            "sources": [{"name": "manuals", "targets": [str(SAMPLES / "nimbus-r7")], "tenant": TENANT,
                         "schedule": {"interval_minutes": 60}}],
            "training": {"cron": "0 4 * * 0", "tenants": [TENANT], "min_new_examples": 10, "config": str(config),
                         "max_steps": 4},
            "max_attempts": 1})})


@pytest.fixture
def scheduler(settings: Settings, engine: Engine) -> Iterator[BackgroundScheduler]:
    """The worker's scheduler with its jobs stored (paused: the test fires them itself)."""
    with open_session(engine) as session:
        create_tenant(session, tenant_id=TENANT)
    scheduler = build_scheduler(settings, JobRunner(settings, engine, owner="worker-1"))
    yield scheduler
    scheduler.remove_all_jobs()  # none due when shutting down wakes its loop a last time
    scheduler.shutdown()


def fire(scheduler: BackgroundScheduler, job_id: str) -> None:
    """What the scheduler does when the job is due: call its stored function with its stored arguments."""
    job = scheduler.get_job(job_id)
    assert job is not None, f"the worker schedules no {job_id!r}"
    job.func(*job.args, **job.kwargs)


def latest_run(engine: Engine, kind: str) -> JobRecord:
    with open_session(engine) as session:
        return job_queries.list_jobs(session, tenant_id=TENANT, kind=kind, limit=1, offset=0)[0][0]


def log_conversations(session: Session, chunks: list[Any]) -> ConversationLog:
    """Five turns per conversation over the manuals' chunks: thumbs-up answers, one corrected
    answer per conversation, and a thumbs-down and an unrated turn that must be left out."""
    log = ConversationLog()
    for c in range(CONVERSATIONS):
        conversation = create_conversation(session, tenant_id=TENANT, channel="web", user_id=f"u{c}").id
        for t in range(TURNS):
            chunk = chunks[c * TURNS + t]
            topic = (chunk.meta.get("heading_path") or [chunk.meta.get("title") or "the router"])[-1]
            reference = chunk.content.split(". ")[0].strip().rstrip(".") + " [1]."
            if t == TURNS - 1:  # the agent corrected a wrong answer: the correction is the target
                turn = log_turn(session, log, conversation, f"{PHRASINGS[c]} {topic}?", "I'm not sure.", [chunk.id])
                save_feedback(session, tenant_id=TENANT, turn_id=turn, rating="down", corrected_answer=reference)
            else:
                turn = log_turn(session, log, conversation, f"{PHRASINGS[c]} {topic}?", reference, [chunk.id])
                save_feedback(session, tenant_id=TENANT, turn_id=turn, rating="up")
            log.included[f"{c}.{t}"] = turn
    log.excluded["negative"] = log_turn(session, log, conversation, "Is it waterproof?", "Yes [1].", [chunks[0].id])
    save_feedback(session, tenant_id=TENANT, turn_id=log.excluded["negative"], rating="down")
    log.excluded["no_signal"] = log_turn(session, log, conversation, "Thanks!", "You're welcome [1].", [chunks[1].id])
    return log


@pytest.mark.parametrize("db_settings", ["sqlite"], indirect=True)
def test_scheduled_training_trains_evaluates_registers_then_skips(
        settings: Settings, engine: Engine, scheduler: BackgroundScheduler, one_thread: None) -> None:
    fire(scheduler, "reindex:manuals")
    assert latest_run(engine, "reindex").status == "succeeded"
    chunks = sorted(build_document_store(settings).filter_documents(filters=metadata_filters(tenant=TENANT)),
                    key=lambda doc: doc.id)
    assert len(chunks) >= CONVERSATIONS * TURNS
    with open_session(engine) as session:
        log_conversations(session, chunks)

    fire(scheduler, "train:acme")

    run = latest_run(engine, "train")
    counts = run.counts
    print("\ntrain run counts:", json.dumps(counts, indent=1))
    assert (run.status, run.requested_by, run.worker, run.error) == ("succeeded", "scheduler", "worker-1", None)
    assert counts["new_examples"] == CONVERSATIONS * TURNS and counts["since"] is None
    assert counts["examples"] == {"train": 40, "validation": 5, "test": 5}
    assert counts["excluded"] == {"negative": 1, "no_signal": 1}
    training = counts["training"]
    assert training["steps"] == 4 and training["train_examples"] + training["skipped_too_long"] == 40
    assert training["train_examples"] > 0 and training["first_loss"] > 0 and training["last_loss"] > 0
    assert training["validation_loss_after"] < training["validation_loss_before"]
    evaluation = counts["evaluation"]
    assert evaluation["compared_with"] == "base"  # nothing promoted before
    assert evaluation["golden_set"].startswith("support-v1@")
    assert evaluation["sets"]["held_out"]["n_examples"] == 5 and evaluation["sets"]["golden"]["n_examples"] == 27
    from training.evaluate import METRICS
    for evaluated in evaluation["sets"].values():
        assert set(evaluated["results"]) == {"candidate", "base"}
        assert all(set(metrics) == set(METRICS) for metrics in evaluated["results"].values())
    # The gate's reasons state the primary metric of the held-out split against what it was compared with.
    assert counts["reasons"] and counts["reasons"][0].startswith("held_out: rouge_l") and "base" in counts["reasons"][0]

    adapters = settings.data_dir / "adapters" / "default"
    assert counts["version"] == "default/v1"
    for name in ("adapter_config.json", "adapter_model.safetensors", "manifest.json", "evaluation.json"):
        assert (adapters / "v1" / name).is_file(), name
    manifest = json.loads((adapters / "v1" / "manifest.json").read_text())
    assert manifest["metrics"]["steps"] == 4 and manifest["dataset"] == counts["dataset"]
    assert json.loads((adapters / "v1" / "adapter_config.json").read_text())["r"] == 8
    # `current` moves only when the gate promotes.
    current = (adapters / "current").read_text().strip() if (adapters / "current").is_file() else None
    assert current == ("v1" if counts["promoted"] else None)

    fire(scheduler, "train:acme")  # nothing new was logged since

    second = latest_run(engine, "train")
    assert second.id != run.id and second.status == "succeeded"
    assert second.counts["new_examples"] == 0 and "fewer than worker.training.min_new_examples=10" in second.counts["skipped"]
    assert second.counts["since"] == run.started_at.isoformat()  # type: ignore[union-attr]
    assert sorted(p.name for p in adapters.iterdir() if p.is_dir()) == ["v1"]

    with open_session(engine) as session:  # one more example: the window still starts at the run that trained
        conversation = create_conversation(session, tenant_id=TENANT, channel="web", user_id="late").id
        turn = log_turn(session, ConversationLog(), conversation, "One more?", "Yes [1].", [chunks[0].id])
        save_feedback(session, tenant_id=TENANT, turn_id=turn, rating="up")
    fire(scheduler, "train:acme")
    third = latest_run(engine, "train")
    assert third.id not in (run.id, second.id) and third.counts["new_examples"] == 1 and "skipped" in third.counts
    assert third.counts["since"] == run.started_at.isoformat()  # type: ignore[union-attr]
