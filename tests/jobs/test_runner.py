"""The job runner: records, retries, queued jobs, abandoned runs and retention (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from core.db.engine import open_session
from core.db.queries import jobs as job_queries
from core.db.queries.conversations import create_conversation
from core.db.queries.job_locks import try_acquire_lock
from core.db.queries.tenants import create_tenant
from core.db.tables import Conversation, Feedback, JobRecord, JobStatus, Turn, TurnStatus
from core.db.types import utc_now
from core.settings import Settings, WorkerSettings
from jobs.runner import JobRunner


def _settings(db_settings: Settings, **worker: object) -> Settings:
    return db_settings.model_copy(update={"worker": WorkerSettings.model_validate(
        {"max_attempts": 2, "backoff_s": 0, **worker})})


def _old_conversation(engine: Engine, tenant: str, days_ago: float) -> uuid.UUID:
    with open_session(engine) as session:
        conversation = create_conversation(session, tenant_id=tenant, channel="web", user_id="u")
        turn = Turn(conversation_id=conversation.id, tenant_id=tenant, question="q", answer="a",
                    status=TurnStatus.ANSWERED.value)
        session.add(turn)
        session.flush()
        session.add(Feedback(turn_id=turn.id, tenant_id=tenant, rating="up"))
        conversation.updated_at = utc_now() - timedelta(days=days_ago)
        session.add(conversation)
        session.commit()
        return conversation.id


def _tenants(engine: Engine, *names: str) -> None:
    with open_session(engine) as session:
        for name in names:
            create_tenant(session, tenant_id=name)


def test_retention_deletes_only_the_old_conversations_of_that_tenant(engine: Engine, db_settings: Settings) -> None:
    _tenants(engine, "acme", "globex")
    old = _old_conversation(engine, "acme", days_ago=40)
    recent = _old_conversation(engine, "acme", days_ago=5)
    others_old = _old_conversation(engine, "globex", days_ago=40)
    runner = JobRunner(_settings(db_settings, retention={"days": 30}), engine)

    outcome = runner.run_now("retention", tenant="acme", payload={}, requested_by="cli")

    assert outcome.status is JobStatus.SUCCEEDED
    with open_session(engine) as session:
        left = set(session.exec(select(Conversation.id)))
        assert left == {recent, others_old}
        assert {t.conversation_id for t in session.exec(select(Turn))} == {recent, others_old}
        assert len(list(session.exec(select(Feedback)))) == 2
        record = job_queries.get_job(session, job_id=outcome.job_id)  # type: ignore[arg-type]
    assert old not in left
    assert record.counts["deleted"] == {"conversations": 1, "turns": 1, "feedback": 1}
    assert (record.kind, record.status, record.requested_by, record.attempt) == ("retention", "succeeded", "cli", 1)
    assert record.started_at is not None and record.finished_at is not None and record.started_at <= record.finished_at


def test_an_api_queued_job_is_picked_up_and_completed(engine: Engine, db_settings: Settings) -> None:
    _tenants(engine, "acme")
    _old_conversation(engine, "acme", days_ago=400)
    with open_session(engine) as session:
        queued = job_queries.create_job(session, tenant_id="acme", kind="retention", requested_by="sb_ab12",
                                        payload={"days": 365})
    runner = JobRunner(_settings(db_settings), engine, owner="w1")

    outcomes = runner.poll_once()

    assert [o.job_id for o in outcomes] == [queued.id]
    with open_session(engine) as session:
        done = job_queries.get_job(session, job_id=queued.id)
    assert (done.status, done.worker, done.error) == ("succeeded", "w1", None)
    assert done.counts["deleted"]["conversations"] == 1
    assert runner.poll_once() == []  # not run twice


def test_a_configuration_error_fails_the_run_without_retries(engine: Engine, db_settings: Settings) -> None:
    _tenants(engine, "acme")
    runner = JobRunner(_settings(db_settings), engine)  # retention.days unset

    outcome = runner.run_now("retention", tenant="acme", payload={}, requested_by="scheduler")

    assert outcome.status is JobStatus.FAILED and "worker.retention.days" in (outcome.error or "")
    assert runner.poll_once() == []
    with open_session(engine) as session:
        assert [(r.attempt, r.status) for r in session.exec(select(JobRecord))] == [(1, "failed")]


def test_a_job_whose_lock_is_held_elsewhere_does_not_run(engine: Engine, db_settings: Settings) -> None:
    _tenants(engine, "acme")
    with open_session(engine) as session:
        assert try_acquire_lock(session, name="retention:acme", owner="other-worker", lease_s=60)
        queued = job_queries.create_job(session, tenant_id="acme", kind="retention", requested_by="k", payload={})
    runner = JobRunner(_settings(db_settings, retention={"days": 30}), engine)

    assert runner.run_now("retention", tenant="acme", payload={}, requested_by="cli").job_id is None
    assert runner.poll_once() == []
    with open_session(engine) as session:
        assert job_queries.get_job(session, job_id=queued.id).status == "queued"


def test_a_running_record_whose_lease_expired_is_marked_failed(engine: Engine, db_settings: Settings) -> None:
    _tenants(engine, "acme")
    with open_session(engine) as session:
        try_acquire_lock(session, name="retention:acme", owner="killed", lease_s=1,
                         now=utc_now() - timedelta(seconds=5))
        dead = job_queries.start_job(session, tenant_id="acme", kind="retention", requested_by="scheduler",
                                     payload={}, worker="killed", lock_name="retention:acme")
        try_acquire_lock(session, name="train:acme", owner="alive", lease_s=60)
        alive = job_queries.start_job(session, tenant_id="acme", kind="train", requested_by="scheduler",
                                      payload={}, worker="alive", lock_name="train:acme")
    JobRunner(_settings(db_settings, max_attempts=1), engine).poll_once()
    with open_session(engine) as session:
        dead_after = job_queries.get_job(session, job_id=dead.id)
        assert job_queries.get_job(session, job_id=alive.id).status == "running"
    assert dead_after.status == "failed" and "abandoned" in (dead_after.error or "")


def test_training_is_skipped_below_min_new_examples(engine: Engine, db_settings: Settings, tmp_path: Path) -> None:
    _tenants(engine, "acme")
    _old_conversation(engine, "acme", days_ago=1)  # one answered turn with a thumbs up
    runner = JobRunner(_settings(db_settings, training={"min_new_examples": 5}), engine)

    outcome = runner.run_now("train", tenant="acme", payload={}, requested_by="scheduler")

    assert outcome.status is JobStatus.SUCCEEDED
    with open_session(engine) as session:
        record = job_queries.get_job(session, job_id=outcome.job_id)  # type: ignore[arg-type]
    assert record.counts["new_examples"] == 1
    assert "fewer than worker.training.min_new_examples=5" in record.counts["skipped"]


def test_an_abandoned_run_is_retried_unless_it_came_from_the_cli(engine: Engine, db_settings: Settings) -> None:
    """A killed `supportbot jobs run` had an operator watching (its exit status told them), so
    only the unattended run (here the schedule's) is queued again."""
    _tenants(engine, "acme")
    with open_session(engine) as session:
        for kind, requested_by in (("retention", "scheduler"), ("train", "cli")):
            try_acquire_lock(session, name=f"{kind}:acme", owner="killed", lease_s=1,
                             now=utc_now() - timedelta(seconds=5))
            job_queries.start_job(session, tenant_id="acme", kind=kind, requested_by=requested_by, payload={},
                                  worker="killed", lock_name=f"{kind}:acme")
    settings = _settings(db_settings, max_attempts=3, backoff_s=60)

    JobRunner(settings, engine).fail_abandoned()

    with open_session(engine) as session:
        rows = sorted((r.kind, r.requested_by, r.attempt, r.status) for r in session.exec(select(JobRecord)))
        (retry,) = job_queries.due_jobs(session, now=utc_now() + timedelta(seconds=61))
    assert rows == [("retention", "scheduler", 1, "failed"), ("retention", "scheduler", 2, "queued"),
                    ("train", "cli", 1, "failed")]
    assert retry.kind == "retention" and retry.not_before is not None


def test_new_examples_are_counted_from_the_last_run_that_trained(engine: Engine, db_settings: Settings) -> None:
    """A skipped run neither moves the window forward nor resets it to the start of the log."""
    from jobs.training_pipeline import new_examples_since_last_run

    _tenants(engine, "acme")
    _old_conversation(engine, "acme", days_ago=3)  # a thumbs-up turn the trained run already used
    with open_session(engine) as session:
        trained = job_queries.start_job(session, tenant_id="acme", kind="train", requested_by="scheduler",
                                        payload={}, worker="w", lock_name="train:acme")
        job_queries.finish_job(session, job_id=trained.id, status=JobStatus.SUCCEEDED, counts={"version": "default/v1"})
        trained_at = job_queries.get_job(session, job_id=trained.id).started_at
    _old_conversation(engine, "acme", days_ago=0)  # logged after it
    with open_session(engine) as session:
        skipped = job_queries.start_job(session, tenant_id="acme", kind="train", requested_by="scheduler",
                                        payload={}, worker="w", lock_name="train:acme")
        job_queries.finish_job(session, job_id=skipped.id, status=JobStatus.SUCCEEDED,
                               counts={"skipped": "1 new examples", "new_examples": 1})

    assert new_examples_since_last_run(engine, "acme") == (1, trained_at)
