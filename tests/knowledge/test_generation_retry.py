"""The retry policy of the remote generator: which answers are retried, and how long it waits."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from knowledge.generation.retry import backoff_delay, is_retryable, parse_retry_after


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (503, True), (400, False), (422, False),
                                                   (500, False), (502, False), (504, False)])
def test_only_busy_answers_are_retried(status: int, retryable: bool) -> None:
    assert is_retryable(status) is retryable


def test_full_jitter_draws_below_the_doubling_cap() -> None:
    rng, reference = random.Random(42), random.Random(42)
    for retry, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (60, 8.0)]:
        delay = backoff_delay(retry, base_s=0.5, max_s=8.0, rng=rng)
        assert delay == reference.uniform(0.0, cap)  # exactly one uniform draw in [0, cap]
        assert 0.0 <= delay <= cap


def test_jitter_spreads_the_waits() -> None:
    rng = random.Random(1)
    delays = {backoff_delay(3, base_s=0.5, max_s=8.0, rng=rng) for _ in range(50)}
    assert len(delays) == 50
    assert min(delays) < 1.0 < 3.0 < max(delays)


def test_retry_after_wins_but_is_capped() -> None:
    rng = random.Random(0)
    assert backoff_delay(0, base_s=0.5, max_s=8.0, rng=rng, retry_after_s=2.0) == 2.0
    assert backoff_delay(0, base_s=0.5, max_s=8.0, rng=rng, retry_after_s=120.0) == 8.0
    assert backoff_delay(0, base_s=0.5, max_s=8.0, rng=rng, retry_after_s=0.0) == 0.0


def test_negative_retry_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="retry"):
        backoff_delay(-1, base_s=0.5, max_s=8.0, rng=random.Random(0))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), (" 0 ", 0.0), ("1.5", 1.5), ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
     ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0), (None, None), ("", None), ("soon", None), ("-5", None)],
)
def test_retry_after_header_forms(header: str | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds
