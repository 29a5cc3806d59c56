"""The scheduled learning loop: dataset -> LoRA -> evaluate -> promote (only when the gate passes),
skipped while too few new examples were logged since the last run that trained.

The prompt renderer and the local generate callable come from :mod:`jobs.training_inputs`, as
for ``supportbot train``. The training configuration is ``worker.training.config`` (a YAML file of
:class:`training.config.TrainingConfig` fields) with ``worker.training.max_steps`` over it.

What a run records (its job record's counts): ``new_examples`` and ``since``; ``dataset``,
``examples`` (per split) and ``excluded`` (per reason); ``version`` (registered, whether promoted
or not); ``training`` (steps, losses, seconds); ``evaluation`` (the golden set's version, what the
candidate was compared with, and per set, ``held_out`` and ``golden``, the number of examples and
each model's metrics); ``promoted`` and the gate's ``reasons``.
The candidate's answers are kept next to it in ``evaluation.json``.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from core.db.engine import open_session
from core.db.queries.jobs import succeeded_jobs
from core.db.queries.training import training_candidates
from core.settings import Settings
from jobs.training_inputs import answer_prompt_renderer, base_model_dir, citation_judge, local_generate

log = logging.getLogger(__name__)

# What the job record keeps of the trainer's metrics (the adapter's manifest has them all).
TRAINING_METRICS = ("steps", "train_examples", "skipped_too_long", "first_loss", "last_loss", "train_loss",
                    "validation_loss_before", "validation_loss_after", "train_seconds")


def new_examples_since_last_run(engine: Engine, tenant: str) -> tuple[int, datetime | None]:
    """Turns that would become training examples, logged since the start of the last successful
    train run that trained (a skipped run neither moves the window forward nor resets it)."""
    from training.dataset import select_target

    with open_session(engine) as session:
        trained = next((run for run in succeeded_jobs(session, tenant_id=tenant, kind="train")
                        if not run.counts.get("skipped")), None)
        since = trained.started_at if trained is not None else None
        candidates = training_candidates(session, tenant_id=tenant, since=since)
    return sum(1 for c in candidates if not isinstance(select_target(c), str)), since


def run_training_pipeline(settings: Settings, engine: Engine, tenant: str, *, promote: bool) -> dict[str, Any]:
    config = settings.worker.training
    new, since = new_examples_since_last_run(engine, tenant)
    window = {"new_examples": new, "since": since.isoformat() if since else None}
    if new < config.min_new_examples:
        return {"skipped": f"{new} new examples since {since.isoformat() if since else 'the start'}, "
                           f"fewer than worker.training.min_new_examples={config.min_new_examples}", **window}
    from training.config import TrainingConfig
    from training.dataset import DatasetConfig, build_dataset, load_split, write_dataset
    from training.evaluate import GOLDEN, HELD_OUT, GateConfig, run_gate
    from training.golden_set import golden_set_version, load_golden_set
    from training.lora import train
    from training.registry import AdapterRegistry

    with open_session(engine) as session:
        built = build_dataset(session, config=DatasetConfig(tenant_id=tenant), render=answer_prompt_renderer(settings, tenant))
    dataset = write_dataset(built, settings.data_dir / "datasets")
    log.info("train for %s: %d new examples; dataset %s (%s)", tenant, new, dataset.name, built.counts)
    base_dir = base_model_dir(settings)
    # Unique even for two runs in one second (a retry with no backoff): the trainer appends to
    # metrics.jsonl, so a shared directory would mix two runs' steps.
    output = settings.data_dir / "runs" / f"lora-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    result = train(TrainingConfig.from_yaml(config.config, overrides={
        "base_model_dir": str(base_dir), "dataset_dir": str(dataset), "output_dir": str(output),
        "max_steps": config.max_steps}))
    registry = AdapterRegistry(settings.data_dir / "adapters")
    version = registry.register(result.output_dir, line=config.line)
    candidate = registry.root / config.line / version
    generators = {"candidate": local_generate(settings, base_dir, candidate), "base": local_generate(settings, base_dir, None)}
    current = registry.current_path(config.line)
    if current is not None:
        generators["current"] = local_generate(settings, base_dir, current)
    report = run_gate({HELD_OUT: load_split(dataset, "test"), GOLDEN: load_golden_set()}, generators,
                      judge=citation_judge(settings), gate=GateConfig())
    reasons = report.decision.reasons
    if report.decision.promote and not promote:
        reasons = [*reasons, "not promoted: the run was asked to evaluate only"]
    promoted = promote and report.decision.promote
    summary = report.summary()
    evaluation = {"golden_set": golden_set_version(), "compared_with": summary["compared_with"], "sets": summary["sets"]}
    (candidate / "evaluation.json").write_text(
        json.dumps({**evaluation, "promoted": promoted, "reasons": reasons, "answers": report.answers()}, indent=2)
        + "\n", encoding="utf-8")
    if promoted:
        registry.promote(version, line=config.line)
    log.info("train for %s: %s/%s %s (%s)", tenant, config.line, version, "promoted" if promoted else "not promoted",
             "; ".join(reasons))
    metrics = result.manifest["metrics"]
    return {**window, "dataset": str(dataset), "examples": built.counts, "excluded": dict(built.excluded),
            "version": f"{config.line}/{version}", "training": {key: metrics.get(key) for key in TRAINING_METRICS},
            "evaluation": evaluation, "promoted": promoted, "reasons": reasons}
