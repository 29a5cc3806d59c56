"""The scheduled learning loop: dataset -> LoRA -> evaluate -> promote (only when the gate passes),
skipped while too few new examples were logged since the last successful run.

The prompt renderer and the local generate callable come from :mod:`jobs.training_inputs`, as
for ``supportbot train``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from core.db.engine import open_session
from core.db.queries.jobs import last_succeeded
from core.db.queries.training import training_candidates
from core.settings import Settings
from jobs.training_inputs import answer_prompt_renderer, base_model_dir, local_generate


def new_examples_since_last_run(engine: Engine, tenant: str) -> tuple[int, datetime | None]:
    """Turns that would become training examples, logged since the last successful train run."""
    from training.dataset import select_target

    with open_session(engine) as session:
        last = last_succeeded(session, tenant_id=tenant, kind="train")
        # Only runs that trained count: a skipped run must not move the window forward.
        since = last.started_at if last is not None and not last.counts.get("skipped") else None
        candidates = training_candidates(session, tenant_id=tenant, since=since)
    return sum(1 for c in candidates if not isinstance(select_target(c), str)), since


def run_training_pipeline(settings: Settings, engine: Engine, tenant: str, *, promote: bool) -> dict[str, Any]:
    config = settings.worker.training
    new, since = new_examples_since_last_run(engine, tenant)
    if new < config.min_new_examples:
        return {"skipped": f"{new} new examples since {since.isoformat() if since else 'the start'}, "
                           f"fewer than worker.training.min_new_examples={config.min_new_examples}",
                "new_examples": new}
    from training.config import TrainingConfig
    from training.dataset import DatasetConfig, build_dataset, load_split, write_dataset
    from training.evaluate import GateConfig, decide, evaluate_models
    from training.lora import train
    from training.registry import AdapterRegistry

    with open_session(engine) as session:
        built = build_dataset(session, config=DatasetConfig(tenant_id=tenant), render=answer_prompt_renderer(settings, tenant))
    dataset = write_dataset(built, settings.data_dir / "datasets")
    base_dir = base_model_dir(settings)
    output = settings.data_dir / "runs" / f"lora-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    result = train(TrainingConfig.from_yaml(None, overrides={
        "base_model_dir": str(base_dir), "dataset_dir": str(dataset), "output_dir": str(output),
        "max_steps": config.max_steps}))
    registry = AdapterRegistry(settings.data_dir / "adapters")
    version = registry.register(result.output_dir, line=config.line)
    candidate = registry.root / config.line / version
    generators = {"candidate": local_generate(settings, base_dir, candidate), "base": local_generate(settings, base_dir, None)}
    current = registry.current_path(config.line)
    if current is not None:
        generators["current"] = local_generate(settings, base_dir, current)
    examples = load_split(dataset, "test")
    report = evaluate_models(examples, generators)
    decision = decide(report["results"], report["n_examples"], GateConfig()) if examples else None
    promoted = bool(promote and decision and decision.promote)
    if promoted:
        registry.promote(version, line=config.line)
    return {"new_examples": new, "dataset": str(dataset), "examples": built.counts, "version": f"{config.line}/{version}",
            "results": report["results"], "promoted": promoted,
            "reasons": decision.reasons if decision else ["the test split is empty"]}
