"""Liveness, readiness and Prometheus metrics (no API key: meant for the orchestrator and scraper)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import StateDep
from api.errors import documented
from api.readiness import readiness_checks
from api.schemas import HealthOut, ReadinessOut
from core.errors import BackendUnavailableError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="the process is alive")
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get("/readyz", summary="the database, the document store and the generator can be reached",
            responses=documented(503))
def readyz(state: StateDep) -> ReadinessOut:
    checks = readiness_checks(state)
    failing = {name: result for name, result in checks.items() if result != "ok"}
    if failing:
        raise BackendUnavailableError("not ready: " + "; ".join(f"{name}: {why}" for name, why in failing.items()))
    return ReadinessOut(status="ready", checks=checks)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
