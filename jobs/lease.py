"""A lock lease held while a job runs, renewed in the background so a long run keeps it and a
killed worker's lock expires on its own."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from sqlalchemy import Engine

from core.db.engine import open_session
from core.db.queries.job_locks import release_lock, renew_lock, try_acquire_lock

log = logging.getLogger(__name__)


class LockLease:
    """Usage::

        lease = LockLease(engine, "reindex:acme", owner="host:1234", lease_s=60)
        if lease.acquire():
            with lease:  # renewed every lease_s / 3 until the block ends, then released
                ...
    """

    def __init__(self, engine: Engine, name: str, *, owner: str, lease_s: float) -> None:
        self.engine = engine
        self.name = name
        self.owner = owner
        self.lease_s = lease_s
        self.lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        with open_session(self.engine) as session:
            return try_acquire_lock(session, name=self.name, owner=self.owner, lease_s=self.lease_s)

    def __enter__(self) -> LockLease:
        self._renewer = threading.Thread(target=self._renew_until_stopped, name=f"lease-{self.name}", daemon=True)
        self._renewer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        with open_session(self.engine) as session:
            release_lock(session, name=self.name, owner=self.owner)

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with open_session(self.engine) as session:
                if not renew_lock(session, name=self.name, owner=self.owner, lease_s=self.lease_s):
                    # Another worker took it over (we stalled past the lease): say so; the run's
                    # record is marked failed by whoever finds it, and this run's result is suspect.
                    self.lost = True
                    log.error("lost the lock %s (lease of %s s expired)", self.name, self.lease_s)
                    return
