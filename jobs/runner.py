"""Running one job: take its lock, record the run, do the task, record how it ended, queue a
retry with backoff when it failed. Scheduled runs, API-queued records and ``supportbot jobs run``
all come through here, so they share the locks and the records.

Retries are for unattended runs (the schedule, a request queued through the API): a failed or
abandoned run of theirs is queued again as attempt n+1. A ``supportbot jobs run`` has its operator
watching: its failure is reported there (exit status 1) and is not retried behind their back, nor
is a run they interrupted (Ctrl-C, SIGTERM), which is recorded as failed at once."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from core.db.engine import open_session
from core.db.queries import jobs as job_queries
from core.db.tables import JobRecord, JobStatus
from core.db.types import utc_now
from core.errors import ConfigError, InvalidInputError, SupportbotError
from core.settings import Settings
from jobs.lease import LockLease
from jobs.tasks import lock_name, run_task

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
CLI = "cli"
INTERRUPTED = "interrupted (SIGINT or SIGTERM) while running; not retried"


def worker_id() -> str:
    """Unique per process (and per start), readable in the job list."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class RunOutcome:
    job_id: uuid.UUID | None  # None: not run, the lock was held elsewhere
    status: JobStatus | None
    error: str | None = None
    retry_at: datetime | None = None  # when the queued retry of a failed run becomes due


class JobRunner:
    """Usage::

        runner = JobRunner(settings, engine)
        runner.run_now("retention", tenant="acme", payload={}, requested_by="cli")
        runner.poll_once()  # abandoned records failed, due queued records run
    """

    def __init__(self, settings: Settings, engine: Engine, *, owner: str | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.owner = owner or worker_id()

    def run_now(self, kind: str, *, tenant: str, payload: dict[str, Any], requested_by: str) -> RunOutcome:
        """Run a job here and now if its lock is free; the run is recorded as it starts."""
        lease = self._lease(kind, tenant)
        if not lease.acquire():
            log.info("%s for %s is running elsewhere; skipped", kind, tenant)
            return RunOutcome(job_id=None, status=None)
        with lease:
            with open_session(self.engine) as session:
                job = job_queries.start_job(session, tenant_id=tenant, kind=kind, requested_by=requested_by,
                                            payload=payload, worker=self.owner, lock_name=lease.name)
            return self._execute(job, lease)

    def poll_once(self) -> list[RunOutcome]:
        """Fail the records of dead workers, then run the queued records that are due and whose lock is free."""
        self.fail_abandoned()
        with open_session(self.engine) as session:
            due = job_queries.due_jobs(session)
        outcomes = []
        for job in due:
            lease = self._lease(job.kind, job.tenant_id)
            if not lease.acquire():
                continue  # the same job is running; this record waits for the next poll
            with lease:
                with open_session(self.engine) as session:
                    claimed = job_queries.claim_job(session, job_id=job.id, worker=self.owner, lock_name=lease.name)
                if claimed:
                    outcomes.append(self._execute(job, lease))
        return outcomes

    def fail_abandoned(self) -> None:
        """Mark failed the running records of processes whose lease expired (killed ones), and
        retry those that were not started from the CLI."""
        with open_session(self.engine) as session:
            abandoned = job_queries.fail_abandoned_jobs(session)
        for job in abandoned:
            log.warning("job %s (%s) abandoned by %s", job.id, job.kind, job.worker)
            self._queue_retry(job)

    def _lease(self, kind: str, tenant: str) -> LockLease:
        return LockLease(self.engine, lock_name(self.settings, kind, tenant), owner=self.owner,
                         lease_s=self.settings.worker.lock_lease_s)

    def _execute(self, job: JobRecord, lease: LockLease) -> RunOutcome:
        log.info("job %s: %s for %s (attempt %d) started", job.id, job.kind, job.tenant_id, job.attempt)
        counts: dict[str, Any] = {}
        error: str | None = None
        retry = True
        try:
            counts = run_task(job.kind, self.settings, self.engine, job.tenant_id, dict(job.payload))
        except KeyboardInterrupt:
            # Stopped on purpose (`jobs run` turns SIGTERM into this too): record it now, rather
            # than leave a running record that the next poll would call abandoned and retry.
            self._finish(job, JobStatus.FAILED, counts, INTERRUPTED)
            raise
        except (ConfigError, InvalidInputError) as exc:
            error, retry = exc.message, False  # the same settings would fail the same way again
        except SupportbotError as exc:
            error = exc.message
        except Exception as exc:  # a job's own bug must be recorded, not kill the worker
            log.exception("job %s crashed", job.id)
            error = f"{type(exc).__name__}: {exc}"
        if lease.lost and error is None:
            error = f"lost the lock {lease.name} while running (lease {lease.lease_s} s expired)"
        status = JobStatus.FAILED if error else JobStatus.SUCCEEDED
        self._finish(job, status, counts, error)
        retry_at = self._queue_retry(job) if error and retry else None
        return RunOutcome(job_id=job.id, status=status, error=error, retry_at=retry_at)

    def _finish(self, job: JobRecord, status: JobStatus, counts: dict[str, Any], error: str | None) -> None:
        with open_session(self.engine) as session:
            job_queries.finish_job(session, job_id=job.id, status=status, counts=counts, error=error)
        log.info("job %s: %s%s", job.id, status.value, f" ({error})" if error else "")

    def _queue_retry(self, job: JobRecord) -> datetime | None:
        """Queue attempt n+1 after ``backoff_s * 2**(n-1)`` s; returns when it is due, or None when
        it is not retried (a CLI run, or ``max_attempts`` reached)."""
        worker = self.settings.worker
        if job.requested_by == CLI or job.attempt >= worker.max_attempts:
            return None
        due = utc_now() + timedelta(seconds=worker.backoff_s * 2 ** (job.attempt - 1))
        with open_session(self.engine) as session:
            retry = job_queries.create_job(session, tenant_id=job.tenant_id, kind=job.kind,
                                           requested_by=job.requested_by, payload=dict(job.payload),
                                           attempt=job.attempt + 1, not_before=due)
        log.info("job %s: retry %s queued for attempt %d at %s", job.id, retry.id, retry.attempt, due.isoformat())
        return due
