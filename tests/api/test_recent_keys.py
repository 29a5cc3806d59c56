"""RecentKeys: valid keys remembered for ttl_s after their lookup, the oldest dropped beyond max_keys."""

from __future__ import annotations

import pytest

from api.recent_keys import RecentKeys


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_expires_ttl_after_its_lookup_not_its_last_use() -> None:
    clock = Clock()
    keys = RecentKeys[str](ttl_s=2.0, clock=clock)
    keys.put("k", "acme")
    clock.now += 1.5
    assert keys.get("k") == "acme"
    clock.now += 0.5
    assert keys.get("k") is None
    assert keys.get("unknown") is None


def test_the_oldest_entries_go_beyond_max_keys() -> None:
    keys = RecentKeys[int](ttl_s=60, max_keys=3)
    for number in range(5):
        keys.put(f"k{number}", number)
    assert [keys.get(f"k{number}") for number in range(5)] == [None, None, 2, 3, 4]


def test_zero_ttl_remembers_nothing_and_bad_limits_are_refused() -> None:
    keys = RecentKeys[int](ttl_s=0)
    keys.put("k", 1)
    assert keys.get("k") is None
    with pytest.raises(ValueError, match="ttl_s"):
        RecentKeys[int](ttl_s=-1)
