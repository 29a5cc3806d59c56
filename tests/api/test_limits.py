"""Limits: body size (413), question length (422), per-key rate limit (429 + Retry-After), a full
answer queue (503 + Retry-After). A refused request stores nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from api.limits import RateLimiter
from core.errors import RateLimitedError
from tests.api.conftest import RESET_QUESTION, Api, MakeApi
from tests.api.doubles import GatedGenerator
from tests.api.test_chat import all_turns

pytestmark = pytest.mark.slow
TEN_MB = 10 * 1024 * 1024


def test_token_bucket_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    limiter.take("k")
    limiter.take("k")
    with pytest.raises(RateLimitedError) as refused:
        limiter.take("k")
    assert refused.value.retry_after_s == pytest.approx(1.0)
    limiter.take("other")  # buckets are per key
    now[0] = 1.0
    limiter.take("k")


def test_ten_megabyte_body_is_refused_with_413(api: Api) -> None:
    big = b'{"message": "' + b"a" * TEN_MB + b'", "channel": "web"}'
    response = api.client.post("/v1/chat", content=big, headers=api.headers(**{"Content-Type": "application/json"}))
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(10):
            yield b"a" * (1024 * 1024)

    chunked = api.client.post("/v1/search", content=chunks(), headers=api.headers(**{"Content-Type": "application/json"}))
    assert chunked.status_code == 413
    assert all_turns(api) == []


def test_upload_over_the_upload_limit_is_413(make_api: MakeApi) -> None:
    api = make_api(api={"max_upload_bytes": 64 * 1024})
    response = api.client.post("/v1/documents", files={"files": ("big.md", b"# Big\n" + b"word " * 20_000)},
                               headers=api.headers())
    assert response.status_code == 413
    assert api.client.get("/v1/documents", headers=api.headers()).json()["total"] == 0


def test_question_over_the_length_limit_is_422(make_api: MakeApi) -> None:
    api = make_api(answer={"max_question_chars": 50})
    response = api.client.post("/v1/chat", json={"message": "x" * 51, "channel": "web"}, headers=api.headers())
    assert response.status_code == 422
    assert "over the limit of 50" in response.json()["error"]["message"]
    assert all_turns(api) == []


def test_rate_limit_answers_429_with_retry_after(make_api: MakeApi) -> None:
    api = make_api(api={"rate_limit_burst": 2, "rate_limit_per_minute": 6})
    statuses = [api.client.get("/v1/conversations", headers=api.headers()).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = api.client.get("/v1/conversations", headers=api.headers())
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert api.client.get("/v1/conversations", headers=api.headers("globex")).status_code == 200  # other key
    metrics = api.client.get("/metrics").text
    assert 'supportbot_rejected_requests_total{reason="rate_limited"} 2.0' in metrics


def test_full_answer_queue_answers_503_with_retry_after(make_api: MakeApi) -> None:
    generator = GatedGenerator()
    api = make_api(double=generator, api={"generator_concurrency": 1, "generator_queue": 1, "retry_after_s": 3})
    results: list[httpx.Response] = []

    def ask() -> None:
        results.append(api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"},
                                       headers=api.headers()))

    running = threading.Thread(target=ask)
    running.start()
    assert generator.started.acquire(timeout=20)  # the first answer holds the only worker
    waiting = threading.Thread(target=ask)
    waiting.start()
    for _ in range(200):  # the second one takes the only queue place
        if api.state.gate.admitted == 2:
            break
        threading.Event().wait(0.05)
    try:
        refused = api.client.post("/v1/chat", json={"message": RESET_QUESTION, "channel": "web"},
                                  headers=api.headers())
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "3"
        assert refused.json()["error"]["code"] == "overloaded"
    finally:
        generator.release.set()
    running.join(30)
    waiting.join(30)
    assert [r.status_code for r in results] == [200, 200]
    turns = all_turns(api)
    assert len(turns) == 2 and {t.status for t in turns} == {"answered"}  # none for the refused request
    assert api.state.gate.admitted == 0
