"""The job lock: one holder at a time, renewed while held, taken over once expired (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import Engine

from core.db.engine import open_session
from core.db.queries.job_locks import live_lock_owner, release_lock, renew_lock, try_acquire_lock
from core.db.types import utc_now
from jobs.lease import LockLease


def _acquire(engine: Engine, owner: str, lease_s: float = 60, name: str = "reindex:acme") -> bool:
    with open_session(engine) as session:
        return try_acquire_lock(session, name=name, owner=owner, lease_s=lease_s)


def test_only_one_owner_holds_a_lock_until_it_is_released(engine: Engine) -> None:
    assert _acquire(engine, "w1")
    assert not _acquire(engine, "w2")
    assert _acquire(engine, "w1")  # re-entrant for its owner (it extends the lease)
    assert _acquire(engine, "w2", name="train:acme")  # other names are independent
    with open_session(engine) as session:
        release_lock(session, name="reindex:acme", owner="w2")  # not w2's: nothing happens
        assert live_lock_owner(session, name="reindex:acme") == "w1"
        release_lock(session, name="reindex:acme", owner="w1")
        assert live_lock_owner(session, name="reindex:acme") is None
    assert _acquire(engine, "w2")


def test_an_expired_lock_is_taken_over_and_its_old_owner_cannot_renew_it(engine: Engine) -> None:
    with open_session(engine) as session:
        assert try_acquire_lock(session, name="n", owner="dead", lease_s=5, now=utc_now() - timedelta(seconds=10))
        assert live_lock_owner(session, name="n") is None
        assert try_acquire_lock(session, name="n", owner="alive", lease_s=60)
        assert not renew_lock(session, name="n", owner="dead", lease_s=60)
        assert renew_lock(session, name="n", owner="alive", lease_s=60)
        assert live_lock_owner(session, name="n") == "alive"


def test_racing_workers_get_the_lock_exactly_once(engine: Engine) -> None:
    for round_ in range(3):
        name = f"race-{round_}"
        start = threading.Barrier(6)
        won: list[str] = []

        def contend(owner: str, name: str = name, start: threading.Barrier = start, won: list[str] = won) -> None:
            start.wait()
            if _acquire(engine, owner, name=name):
                won.append(owner)

        threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, won


def test_a_lease_is_renewed_while_held_and_released_after(engine: Engine) -> None:
    lease = LockLease(engine, "long-job", owner="w1", lease_s=0.6)
    assert lease.acquire()
    with lease:
        time.sleep(1.5)  # more than two lease lengths: only renewal keeps it
        assert not _acquire(engine, "w2", name="long-job")
        assert not lease.lost
    with open_session(engine) as session:
        assert live_lock_owner(session, name="long-job") is None
