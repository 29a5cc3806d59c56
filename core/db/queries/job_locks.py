"""Job locks: a lease per job name, taken atomically so two workers never run one job at once.

Taking a lock is one conditional UPDATE (free, expired, or already ours) and, when no row exists
yet, one INSERT that the primary key lets only one worker win. Both are single statements, so the
same code is atomic on SQLite and on PostgreSQL without table locks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.db.tables import JobLock
from core.db.types import utc_now


def try_acquire_lock(session: Session, *, name: str, owner: str, lease_s: float, now: datetime | None = None
                     ) -> bool:
    """Take (or take over an expired) lock ``name`` for ``owner`` for ``lease_s`` seconds."""
    now = now or utc_now()
    expires = now + timedelta(seconds=lease_s)
    taken = session.execute(
        update(JobLock).where(col(JobLock.name) == name,
                              (col(JobLock.expires_at) <= now) | (col(JobLock.owner) == owner))
        .values(owner=owner, acquired_at=now, expires_at=expires))
    session.commit()
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        return True
    try:
        session.execute(insert(JobLock).values(name=name, owner=owner, acquired_at=now, expires_at=expires))
        session.commit()
    except IntegrityError:  # someone holds it (or won the race to insert it)
        session.rollback()
        return False
    return True


def renew_lock(session: Session, *, name: str, owner: str, lease_s: float) -> bool:
    """Extend ``owner``'s lease; False when the lock was lost (expired and taken over)."""
    renewed = session.execute(
        update(JobLock).where(col(JobLock.name) == name, col(JobLock.owner) == owner)
        .values(expires_at=utc_now() + timedelta(seconds=lease_s)))
    session.commit()
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


def release_lock(session: Session, *, name: str, owner: str) -> None:
    session.execute(delete(JobLock).where(col(JobLock.name) == name, col(JobLock.owner) == owner))
    session.commit()


def live_lock_owner(session: Session, *, name: str, now: datetime | None = None) -> str | None:
    """Who holds an unexpired lease on ``name``, if anyone."""
    row = session.exec(select(JobLock).where(JobLock.name == name, col(JobLock.expires_at) > (now or utc_now()))
                       ).first()
    return row.owner if row else None
