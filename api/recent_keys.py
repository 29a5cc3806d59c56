"""API keys found valid recently, so that a busy key is not looked up in the database on every
request (a lookup and a trip through the thread pool cost about 1 ms of a 10 ms chat, README "API
overhead").

Entries expire ``ttl_s`` after the lookup, not after the last use: a key revoked in another process
(`supportbot keys revoke`) is refused by every API process within ``ttl_s``. Only keys found valid
are kept, so guessing keys neither fills this nor skips the database.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class RecentKeys(Generic[T]):
    """Usage (from the event loop only; it takes no lock)::

        keys = RecentKeys[Principal](ttl_s=2.0)
        principal = keys.get(digest) or look_up(...)   # then keys.put(digest, principal)
    """

    def __init__(self, ttl_s: float, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0 or max_keys < 1:
            raise ValueError("ttl_s must be >= 0 and max_keys >= 1")
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def get(self, digest: str) -> T | None:
        """The value stored for ``digest`` less than ``ttl_s`` ago, else None."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if self._clock() >= entry[0]:
            del self._entries[digest]
            return None
        return entry[1]

    def put(self, digest: str, value: T) -> None:
        if self.ttl_s == 0:
            return
        self._entries[digest] = (self._clock() + self.ttl_s, value)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
