"""Prometheus metrics, one registry per app (tests create many apps in one process)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.schemas import Answer

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("supportbot_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("supportbot_http_request_duration_seconds", "HTTP request latency (streams: until the end)",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.turns = Counter("supportbot_chat_turns", "chat turns by final status", ["status"], registry=r)
        self.answer_latency = Histogram("supportbot_answer_duration_seconds", "time to a checked answer",
                                        ["generator"], buckets=LATENCY_BUCKETS, registry=r)
        self.generated_tokens = Counter("supportbot_generated_tokens", "tokens generated", ["generator"], registry=r)
        self.abstentions = Counter("supportbot_abstentions", "answers withheld, by reason", ["reason"], registry=r)
        self.handoffs = Counter("supportbot_handoffs", "conversations handed to a person", registry=r)
        self.feedback = Counter("supportbot_feedback", "feedback received, by rating", ["rating"], registry=r)
        self.rejected = Counter("supportbot_rejected_requests", "requests refused by a limit", ["reason"], registry=r)
        self.in_flight = Gauge("supportbot_generator_in_flight", "answers running or queued", registry=r)

    def record_answer(self, answer: Answer, generated_tokens: int) -> None:
        self.turns.labels("answered").inc()
        self.answer_latency.labels(answer.generator).observe(answer.timings.total_ms / 1000)
        self.generated_tokens.labels(answer.generator).inc(generated_tokens)
        if answer.abstained:
            self.abstentions.labels(answer.handoff_reason or "unknown").inc()
            self.handoffs.inc()


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (not the raw path, whose ids
    would make one series per conversation)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
