"""Job records: what an admin asked the worker to do, and how it went."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.db.tables import JobRecord


def create_job(session: Session, *, tenant_id: str, kind: str, requested_by: str, payload: dict[str, Any]
               ) -> JobRecord:
    job = JobRecord(tenant_id=tenant_id, kind=kind, requested_by=requested_by, payload=payload)
    session.add(job)
    session.commit()
    return job


def list_jobs(session: Session, *, tenant_id: str, kind: str | None = None, status: str | None = None,
              limit: int, offset: int) -> tuple[list[JobRecord], int]:
    conditions = [JobRecord.tenant_id == tenant_id]
    if kind is not None:
        conditions.append(JobRecord.kind == kind)
    if status is not None:
        conditions.append(JobRecord.status == status)
    total = session.exec(select(func.count()).select_from(JobRecord).where(*conditions)).one()
    statement = (select(JobRecord).where(*conditions).order_by(col(JobRecord.created_at).desc(), col(JobRecord.id))
                 .limit(limit).offset(offset))
    return list(session.exec(statement)), int(total)
