"""When to retry a generation server, and how long to wait first.

Only "busy" answers are retried: HTTP 429 (TGI: "Model is overloaded") and 503 (not ready yet, or a
proxy in front of it has no healthy backend). Every other failure would fail again the same way, and
the answer service has its own fallback (extraction), so retrying them only adds latency.

Waits use exponential backoff with *full jitter* (a uniform draw between 0 and the exponential cap):
many API workers hitting one overloaded server then spread out instead of retrying in lockstep. A
``Retry-After`` header from the server wins over the computed wait, but is still capped, so a server
asking for minutes cannot hold an answer hostage.

Example::

    rng = random.Random(7)
    backoff_delay(0, base_s=0.5, max_s=8.0, rng=rng)                     # in [0, 0.5]
    backoff_delay(3, base_s=0.5, max_s=8.0, rng=rng)                     # in [0, 4.0]
    backoff_delay(1, base_s=0.5, max_s=8.0, rng=rng, retry_after_s=30)   # 8.0
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 503})

# 2**30 * any sane base already exceeds any sane cap; stops float overflow for absurd retry counts.
_MAX_EXPONENT = 30
# RFC 9110 allows whole seconds only; fractions are accepted because some proxies send them.
_DELAY_SECONDS = re.compile(r"\d+(\.\d+)?")


def is_retryable(status: int) -> bool:
    """Whether an HTTP status means "busy, try again shortly"."""
    return status in RETRYABLE_STATUSES


def backoff_delay(
    retry: int,
    *,
    base_s: float,
    max_s: float,
    rng: random.Random,
    retry_after_s: float | None = None,
) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first retry).

    :param retry: how many retries were already made.
    :param base_s: the cap of the first wait; each retry doubles it.
    :param max_s: the cap of any wait, ``Retry-After`` included.
    :param rng: the source of jitter (seed it in tests).
    :param retry_after_s: the server's ``Retry-After`` in seconds, if it sent one.
    :returns: a wait in ``[0, max_s]``.
    """
    if retry < 0:
        raise ValueError(f"retry must be >= 0, got {retry}")
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), max_s)
    cap = min(max_s, base_s * 2 ** min(retry, _MAX_EXPONENT))
    return rng.uniform(0.0, cap)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delay-seconds or an HTTP date), or ``None``.

    Unparseable values give ``None`` (fall back to backoff) rather than an error: the header is advice,
    and a malformed one must not turn a retryable failure into a hard one.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
