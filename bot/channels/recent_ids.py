"""Remembers ids seen in the last ``ttl_s`` seconds, so a platform's retries of one event (Slack
resends an event it thinks went unanswered, with the same ``event_id``) are handled once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RecentIds:
    """Usage::

        seen = RecentIds(ttl_s=3600)
        seen.first_time("Ev123")  # True
        seen.first_time("Ev123")  # False, until an hour has passed
    """

    def __init__(self, ttl_s: float, max_ids: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_ids = max_ids
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, item: str) -> bool:
        """True the first time ``item`` is offered within the window (and remembers it)."""
        now = self._clock()
        with self._lock:
            while self._seen and now - next(iter(self._seen.values())) >= self.ttl_s:
                self._seen.popitem(last=False)
            if item in self._seen:
                return False
            while len(self._seen) >= self.max_ids:
                self._seen.popitem(last=False)
            self._seen[item] = now
            return True
