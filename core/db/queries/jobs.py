"""Job records: what an admin, the CLI or the worker's schedule asked for, and how each run went."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from core.db.tables import JobLock, JobRecord, JobStatus
from core.db.types import utc_now
from core.errors import NotFoundError


def create_job(session: Session, *, tenant_id: str, kind: str, requested_by: str, payload: dict[str, Any],
               attempt: int = 1, not_before: datetime | None = None) -> JobRecord:
    job = JobRecord(tenant_id=tenant_id, kind=kind, requested_by=requested_by, payload=payload, attempt=attempt,
                    not_before=not_before)
    session.add(job)
    session.commit()
    return job


def get_job(session: Session, *, job_id: uuid.UUID) -> JobRecord:
    job = session.get(JobRecord, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} does not exist")
    return job


def list_jobs(session: Session, *, tenant_id: str | None, kind: str | None = None, status: str | None = None,
              limit: int, offset: int) -> tuple[list[JobRecord], int]:
    """Newest first; ``tenant_id=None`` lists every tenant's (the operator's CLI)."""
    conditions = [] if tenant_id is None else [JobRecord.tenant_id == tenant_id]
    if kind is not None:
        conditions.append(JobRecord.kind == kind)
    if status is not None:
        conditions.append(JobRecord.status == status)
    total = session.exec(select(func.count()).select_from(JobRecord).where(*conditions)).one()
    statement = (select(JobRecord).where(*conditions).order_by(col(JobRecord.created_at).desc(), col(JobRecord.id))
                 .limit(limit).offset(offset))
    return list(session.exec(statement)), int(total)


def due_jobs(session: Session, *, now: datetime | None = None, limit: int = 20) -> list[JobRecord]:
    """Queued records whose retry time (if any) has come, oldest first."""
    now = now or utc_now()
    statement = (select(JobRecord).where(JobRecord.status == JobStatus.QUEUED.value,
                                         or_(col(JobRecord.not_before).is_(None), col(JobRecord.not_before) <= now))
                 .order_by(col(JobRecord.created_at), col(JobRecord.id)).limit(limit))
    return list(session.exec(statement))


def claim_job(session: Session, *, job_id: uuid.UUID, worker: str, lock_name: str) -> bool:
    """queued -> running, only if it is still queued (another worker may have claimed it)."""
    claimed = session.execute(
        update(JobRecord).where(col(JobRecord.id) == job_id, col(JobRecord.status) == JobStatus.QUEUED.value)
        .values(status=JobStatus.RUNNING.value, started_at=utc_now(), worker=worker, lock_name=lock_name))
    session.commit()
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def start_job(session: Session, *, tenant_id: str, kind: str, requested_by: str, payload: dict[str, Any],
              worker: str, lock_name: str, attempt: int = 1) -> JobRecord:
    """A record born running (a scheduled or CLI run that already holds its lock)."""
    job = JobRecord(tenant_id=tenant_id, kind=kind, requested_by=requested_by, payload=payload, attempt=attempt,
                    status=JobStatus.RUNNING.value, started_at=utc_now(), worker=worker, lock_name=lock_name)
    session.add(job)
    session.commit()
    return job


def finish_job(session: Session, *, job_id: uuid.UUID, status: JobStatus, counts: dict[str, Any],
               error: str | None = None) -> None:
    session.execute(update(JobRecord).where(col(JobRecord.id) == job_id)
                    .values(status=status.value, finished_at=utc_now(), counts=counts, error=error))
    session.commit()


def fail_abandoned_jobs(session: Session, *, now: datetime | None = None) -> list[JobRecord]:
    """Mark failed every running record whose worker no longer holds a live lease on its lock
    (the worker was killed, or lost the lock): it will never finish by itself."""
    now = now or utc_now()
    live = (select(JobLock.name).where(col(JobLock.name) == col(JobRecord.lock_name),
                                       col(JobLock.owner) == col(JobRecord.worker),
                                       col(JobLock.expires_at) > now).exists())
    abandoned = list(session.exec(select(JobRecord).where(JobRecord.status == JobStatus.RUNNING.value, ~live)))
    for job in abandoned:
        job.status = JobStatus.FAILED.value
        job.finished_at = now
        job.error = f"abandoned: worker {job.worker} stopped renewing its lease on {job.lock_name}"
        session.add(job)
    session.commit()
    return abandoned


def succeeded_jobs(session: Session, *, tenant_id: str, kind: str) -> Iterator[JobRecord]:
    """The tenant's succeeded runs of ``kind``, newest start first (read lazily: callers usually
    stop at the first that matches)."""
    yield from session.exec(select(JobRecord).where(JobRecord.tenant_id == tenant_id, JobRecord.kind == kind,
                                                    JobRecord.status == JobStatus.SUCCEEDED.value)
                            .order_by(col(JobRecord.started_at).desc(), col(JobRecord.id)))
