"""Admin routes (admin keys only): request a re-index or a training run, list job records. The
worker process carries the jobs out; here they are recorded as ``queued``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import AdminDep, SessionDep
from api.errors import AUTHENTICATED, documented
from api.schemas import JobKind, JobOut, JobStatusName, Page, ReindexRequest, TrainRequest
from core.db.queries import jobs

router = APIRouter(prefix="/v1/admin", tags=["admin"])
_ERRORS = documented(*AUTHENTICATED, 403)


@router.post("/reindex", status_code=status.HTTP_202_ACCEPTED, summary="queue a re-index of the tenant's sources",
             responses=_ERRORS)
def reindex(body: ReindexRequest, admin: AdminDep, session: SessionDep) -> JobOut:
    job = jobs.create_job(session, tenant_id=admin.tenant_id, kind="reindex", requested_by=admin.key_prefix,
                          payload=body.model_dump())
    return JobOut.model_validate(job.model_dump())


@router.post("/train", status_code=status.HTTP_202_ACCEPTED, summary="queue a training run from logged feedback",
             responses=_ERRORS)
def train(body: TrainRequest, admin: AdminDep, session: SessionDep) -> JobOut:
    job = jobs.create_job(session, tenant_id=admin.tenant_id, kind="train", requested_by=admin.key_prefix,
                          payload=body.model_dump())
    return JobOut.model_validate(job.model_dump())


@router.get("/jobs", summary="the tenant's job records, newest first", responses=_ERRORS)
def list_jobs(admin: AdminDep, session: SessionDep,
              limit: Annotated[int, Query(ge=1, le=100)] = 20,
              offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
              kind: JobKind | None = None, status: JobStatusName | None = None) -> Page[JobOut]:
    rows, total = jobs.list_jobs(session, tenant_id=admin.tenant_id, kind=kind, status=status,
                                 limit=limit, offset=offset)
    return Page[JobOut](items=[JobOut.model_validate(row.model_dump()) for row in rows], total=total,
                        limit=limit, offset=offset)
