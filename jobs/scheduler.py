"""The worker's APScheduler: its job store is a table in the project's database, so schedules
survive restarts and every worker sees the same ones. Several workers may share it: each fires
the jobs it finds due, and the job locks (:mod:`jobs.lease`) let only one of them run each.

APScheduler keeps a textual reference to each job's function, so the functions here are
module-level and find the running worker's :class:`JobRunner` through :func:`_active_runner`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from core.db.engine import open_session
from core.db.migrate import create_foreign_table
from core.db.queries.tenants import get_tenant, list_tenants
from core.errors import ConfigError
from core.settings import ScheduleSettings, Settings
from jobs.runner import SCHEDULER, JobRunner

log = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
_runner_box: dict[str, JobRunner] = {}


def _active_runner() -> JobRunner:
    return _runner_box["runner"]


def run_scheduled(kind: str, tenant: str, payload: dict[str, Any]) -> None:
    _active_runner().run_now(kind, tenant=tenant, payload=payload, requested_by=SCHEDULER)


def run_retention() -> None:
    runner = _active_runner()
    for tenant in retention_tenants(runner.settings, runner.engine):
        runner.run_now("retention", tenant=tenant, payload={}, requested_by=SCHEDULER)


def poll_queue() -> None:
    _active_runner().poll_once()


def retention_tenants(settings: Settings, engine: Engine) -> list[str]:
    if settings.worker.retention.tenants:
        return list(settings.worker.retention.tenants)
    with open_session(engine) as session:
        return [tenant.id for tenant in list_tenants(session)]


def trigger(schedule: ScheduleSettings) -> BaseTrigger:
    if schedule.cron is not None:
        return CronTrigger.from_crontab(schedule.cron, timezone="UTC")
    return IntervalTrigger(minutes=schedule.interval_minutes or 0, timezone="UTC")


def check_tenants_exist(settings: Settings, engine: Engine) -> None:
    """Every tenant the settings name must exist: a run's record belongs to its tenant."""
    named: list[tuple[str, str]] = [(f"worker.sources[{i}].tenant", s.tenant) for i, s in enumerate(settings.worker.sources)]
    named += [(f"worker.training.tenants[{i}]", t) for i, t in enumerate(settings.worker.training.tenants)]
    named += [(f"worker.retention.tenants[{i}]", t) for i, t in enumerate(settings.worker.retention.tenants)]
    with open_session(engine) as session:
        for key, tenant in named:
            if get_tenant(session, tenant_id=tenant) is None:
                raise ConfigError(f"{key}: tenant {tenant!r} does not exist (`supportbot tenants create {tenant}`)")


def check_training_config(settings: Settings) -> None:
    """A bad ``worker.training.config`` stops the worker at start rather than failing (without
    retries) the first scheduled retraining, which may be a week away."""
    training = settings.worker.training
    if training.cron is None or training.config is None:
        return
    from training.config import TrainingConfig

    try:
        TrainingConfig.from_yaml(training.config, overrides={"max_steps": training.max_steps})
    except ConfigError as error:
        raise ConfigError(f"worker.training.config: {error.message}") from error


def scheduled_jobs(settings: Settings) -> Iterator[tuple[str, Any, BaseTrigger, list[Any]]]:
    """(APScheduler job id, function, trigger, args) of every job the settings ask for."""
    worker = settings.worker
    for source in worker.sources:
        yield (f"reindex:{source.name}", run_scheduled, trigger(source.schedule),
               ["reindex", source.tenant, {"source": source.name, "prune": source.prune}])
    if worker.training.cron:
        for tenant in worker.training.tenants or [settings.default_tenant]:
            yield (f"train:{tenant}", run_scheduled, CronTrigger.from_crontab(worker.training.cron, timezone="UTC"),
                   ["train", tenant, {"promote": True}])
    if worker.retention.days:
        yield "retention", run_retention, CronTrigger.from_crontab(worker.retention.cron, timezone="UTC"), []
    yield "poll-queue", poll_queue, IntervalTrigger(seconds=worker.poll_interval_s, timezone="UTC"), []


def build_scheduler(settings: Settings, runner: JobRunner) -> BackgroundScheduler:
    """A scheduler with the settings' jobs in the database job store (replacing what an earlier
    start stored there; jobs no longer configured are removed)."""
    store = SQLAlchemyJobStore(engine=runner.engine, tablename=JOBSTORE_TABLE)
    # The store would create its table on start, racing a worker that starts at the same moment.
    create_foreign_table(runner.engine, store.jobs_t)
    # Jobs fire on the scheduler's threads; the lock, not max_instances, is what stops a second
    # worker, but max_instances=1 keeps one worker from piling up runs of its own.
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": settings.worker.misfire_grace_s})
    _runner_box["runner"] = runner
    wanted = set()
    for job_id, func, job_trigger, args in scheduled_jobs(settings):
        scheduler.add_job(func, job_trigger, args=args, id=job_id, name=job_id, replace_existing=True)
        wanted.add(job_id)
    scheduler.start(paused=True)
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            scheduler.remove_job(job.id)
    return scheduler


def run_worker(settings: Settings, engine: Engine, stop: threading.Event) -> None:
    """Run the schedule until ``stop`` is set, then wait for running jobs to finish."""
    check_tenants_exist(settings, engine)
    check_training_config(settings)
    runner = JobRunner(settings, engine)
    scheduler = build_scheduler(settings, runner)
    log.info("worker %s started: %s", runner.owner, ", ".join(job.id for job in scheduler.get_jobs()))
    scheduler.resume()
    try:
        stop.wait()
    finally:
        log.info("worker %s stopping; waiting for running jobs", runner.owner)
        scheduler.shutdown(wait=True)
        _runner_box.pop("runner", None)
