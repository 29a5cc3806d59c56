"""What each kind of job does. Each task returns the counts recorded on its run, and raises a
:class:`core.errors.SupportbotError` when the run failed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from core.db.engine import open_session
from core.db.queries.retention import delete_conversations_before
from core.db.types import utc_now
from core.errors import BackendUnavailableError, ConfigError, InvalidInputError
from core.settings import ReindexSourceSettings, Settings

JOB_KINDS = ("reindex", "train", "retention")


def sources_to_reindex(settings: Settings, tenant: str, payload: dict[str, Any]) -> list[ReindexSourceSettings]:
    """The configured sources a re-index run covers: the one named in ``payload["source"]``, or (a
    run asked for through the API) every source of the tenant matching its product/version."""
    if payload.get("source"):
        named = [s for s in settings.worker.sources if s.name == payload["source"]]
        if not named:
            raise ConfigError(f"worker.sources has no source named {payload['source']!r}")
        return named
    chosen = [s for s in settings.worker.sources if s.tenant == tenant
              and payload.get("product") in (None, s.product) and payload.get("version") in (None, s.version)]
    if not chosen:
        raise ConfigError(f"worker.sources has no source of tenant {tenant!r} to re-index")
    return chosen


def run_reindex(settings: Settings, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
    from knowledge.document_store import build_document_store
    from knowledge.indexing import Indexer, SourceMeta

    counts: dict[str, Any] = {}
    # A fresh store per run: another worker may have written the embedded store's file since.
    indexer = Indexer(settings, build_document_store(settings))
    for source in sources_to_reindex(settings, tenant, payload):
        prune = bool(payload.get("prune", source.prune))
        summary = indexer.ingest(list(source.targets), SourceMeta(tenant=source.tenant, product=source.product,
                                                                  version=source.version), prune=prune)
        counts[source.name] = summary.as_dict()
        written = summary.new + summary.changed + summary.unchanged + len(summary.duplicates)
        if summary.failed and not written:
            reasons = "; ".join(f"{where}: {why}" for where, why in summary.failed[:5])
            raise BackendUnavailableError(f"source {source.name!r}: nothing could be read ({reasons})")
    return counts


def run_retention(settings: Settings, engine: Engine, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
    days = payload.get("days", settings.worker.retention.days)
    if not isinstance(days, int) or days < 1:
        raise InvalidInputError("retention needs worker.retention.days (a whole number of days >= 1)")
    cutoff = utc_now() - timedelta(days=days)
    with open_session(engine) as session:
        deleted = delete_conversations_before(session, tenant_id=tenant, before=cutoff)
    return {"days": days, "before": cutoff.isoformat(), "deleted": deleted}


def run_train(settings: Settings, engine: Engine, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
    from jobs.training_pipeline import run_training_pipeline

    return run_training_pipeline(settings, engine, tenant, promote=bool(payload.get("promote", True)))


def run_task(kind: str, settings: Settings, engine: Engine, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
    if kind == "reindex":
        return run_reindex(settings, tenant, payload)
    if kind == "retention":
        return run_retention(settings, engine, tenant, payload)
    if kind == "train":
        return run_train(settings, engine, tenant, payload)
    raise InvalidInputError(f"unknown job kind {kind!r}; one of {', '.join(JOB_KINDS)}")


def lock_name(settings: Settings, kind: str, tenant: str) -> str:
    """One lock per kind and tenant; the embedded store is a single file shared by every tenant,
    so its re-index runs share one lock."""
    if kind == "reindex" and settings.store.backend == "memory":
        return "reindex"
    return f"{kind}:{tenant}"
