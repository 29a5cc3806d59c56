from __future__ import annotations

from bot.channels.recent_ids import RecentIds


def test_an_id_is_new_once_within_the_window_and_again_after_it() -> None:
    now = [0.0]
    seen = RecentIds(ttl_s=60, clock=lambda: now[0])
    assert seen.first_time("Ev1")
    assert not seen.first_time("Ev1")
    assert seen.first_time("Ev2")
    now[0] = 61.0
    assert seen.first_time("Ev1")


def test_the_oldest_ids_are_forgotten_beyond_the_cap() -> None:
    seen = RecentIds(ttl_s=3600, max_ids=2)
    for item in ("a", "b", "c"):
        assert seen.first_time(item)
    assert seen.first_time("a")  # evicted to make room
    assert not seen.first_time("c")
