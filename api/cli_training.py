"""``supportbot train dataset|lora|evaluate|promote|rollback|list|tgi-env|opt-out``: the learning loop.

The ``training`` package may not import ``knowledge``; what it needs from there is built here and
passed in: the prompt renderer (answer prompt + document store) for the dataset, the base model
directory (the SmolLM2 cache) for training, and the generate callables and the citation judge (the
answer pipeline's support check) for the evaluation gate.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError
from core.settings import Settings
from jobs.training_inputs import answer_prompt_renderer, base_model_dir, citation_judge, local_generate


def _tenant(args: argparse.Namespace, settings: Settings) -> str:
    return str(getattr(args, "tenant", None) or settings.default_tenant)


def _registry(settings: Settings) -> Any:
    from training.registry import AdapterRegistry

    return AdapterRegistry(settings.data_dir / "adapters")


def cmd_train_dataset(args: argparse.Namespace, settings: Settings) -> int:
    from api.cli_admin import _engine
    from core.db.engine import open_session
    from training.dataset import DatasetConfig, build_dataset, write_dataset

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError as error:
            raise InvalidInputError(f"--since {args.since!r} is not an ISO date or time") from error
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    tenant = _tenant(args, settings)
    config = DatasetConfig(tenant_id=tenant, since=since, seed=args.seed,
                           validation_fraction=args.validation_fraction, test_fraction=args.test_fraction)
    with open_session(_engine(settings)) as session:
        built = build_dataset(session, config=config, render=answer_prompt_renderer(settings, tenant))
    path = write_dataset(built, Path(args.out) if args.out else settings.data_dir / "datasets")
    summary = {"path": str(path), "counts": built.counts, "excluded": dict(built.excluded),
               "pii_redactions": dict(built.redactions)}
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        print(f"dataset {path}")
        print("examples: " + ", ".join(f"{name} {n}" for name, n in built.counts.items()))
        print("left out: " + (", ".join(f"{k} {v}" for k, v in sorted(built.excluded.items())) or "none"))
        print("PII redacted: " + (", ".join(f"{k} {v}" for k, v in sorted(built.redactions.items())) or "none"))
    return 0


def cmd_train_lora(args: argparse.Namespace, settings: Settings) -> int:
    from training.config import TrainingConfig
    from training.dataset import latest_dataset
    from training.lora import train

    dataset = Path(args.dataset) if args.dataset else latest_dataset(settings.data_dir / "datasets")
    output = Path(args.output) if args.output else (
        settings.data_dir / "runs" / f"{'full' if args.full else 'lora'}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    overrides = {"base_model_dir": args.base, "dataset_dir": str(dataset), "output_dir": str(output),
                 "full": True if args.full else None, "max_steps": args.max_steps}
    config = TrainingConfig.from_yaml(args.config, overrides=overrides)
    if not config.base_model_dir:
        config.base_model_dir = str(base_model_dir(settings))
    result = train(config)
    summary: dict[str, Any] = {"output": str(result.output_dir), "metrics": result.manifest["metrics"]}
    if not config.full and not args.output:
        summary["version"] = _registry(settings).register(result.output_dir, line=args.line)
        summary["line"] = args.line
    if args.json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        return 0
    metrics = summary["metrics"]
    print(f"trained {metrics['steps']} steps in {metrics['train_seconds']:.0f} s "
          f"({metrics['tokens_per_second']} tokens/s); loss {metrics['first_loss']:.4f} -> {metrics['last_loss']:.4f}")
    print(f"output {summary['output']}" + (f"; registered as {args.line}/{summary['version']} (not promoted; "
                                           f"run `supportbot train evaluate`)" if "version" in summary else ""))
    return 0


def cmd_train_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from training.dataset import load_split
    from training.evaluate import GOLDEN, HELD_OUT, GateConfig, run_gate
    from training.golden_set import golden_set_version, load_golden_set
    from training.registry import validate_adapter_dir

    candidate = Path(args.candidate)
    manifest = validate_adapter_dir(candidate)
    dataset = Path(args.dataset) if args.dataset else Path(str(manifest.get("dataset", "")))
    examples = load_split(dataset, "test")
    if args.limit:
        examples = examples[: args.limit]
    gate = GateConfig(primary=args.primary, margin=args.margin, tolerance=args.tolerance, min_examples=args.min_examples)
    registry = _registry(settings)
    base_dir = Path(str(manifest.get("base_model") or base_model_dir(settings)))
    generators = {"candidate": local_generate(settings, base_dir, candidate), "base": local_generate(settings, base_dir, None)}
    current = registry.current_path(args.line)
    if current is not None and current.resolve() != candidate.resolve():
        generators["current"] = local_generate(settings, base_dir, current)
    report = run_gate({HELD_OUT: examples, GOLDEN: load_golden_set()}, generators,
                      judge=citation_judge(settings), gate=gate)
    result: dict[str, Any] = {"candidate": str(candidate), "dataset": str(dataset),
                              "golden_set": golden_set_version(), **report.summary()}
    (candidate / "evaluation.json").write_text(json.dumps({**result, "answers": report.answers()}, indent=2) + "\n",
                                               encoding="utf-8")
    if args.promote and result["promote"]:
        version = candidate.name if candidate.parent == registry.root / args.line else registry.register(
            candidate, line=args.line)
        registry.promote(version, line=args.line)
        result["promoted"] = f"{args.line}/{version}"
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    origin = {HELD_OUT: f"the test split of {dataset}", GOLDEN: f"the golden set {result['golden_set']}"}
    for name, evaluated in result["sets"].items():
        print(f"{name}: {evaluated['n_examples']} examples from {origin[name]}")
        for model, metrics in evaluated["results"].items():
            print(f"  {model:10}" + "".join(f"  {k} {v:.4f}" for k, v in metrics.items()))
    print(("PROMOTE" if result["promote"] else "KEEP CURRENT") + ": " + "; ".join(result["reasons"]))
    if "promoted" in result:
        print(f"promoted {result['promoted']}")
    return 0


def cmd_train_promote(args: argparse.Namespace, settings: Settings) -> int:
    previous = _registry(settings).promote(args.version, line=args.line)
    print(f"{args.line}: current is now {args.version} (was {previous or 'none'})")
    return 0


def cmd_train_rollback(args: argparse.Namespace, settings: Settings) -> int:
    version = _registry(settings).rollback(line=args.line)
    print(f"{args.line}: rolled back to {version}")
    return 0


def cmd_train_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = _registry(settings).listing()
    if args.json:
        sys.stdout.write(json.dumps([{"line": r.line, "version": r.version, "current": r.current, "path": str(r.path),
                                      "created_at": r.manifest.get("created_at"),
                                      "metrics": r.manifest.get("metrics")} for r in rows], default=str) + "\n")
        return 0
    if not rows:
        print("no adapters registered")
    for row in rows:
        loss = (row.manifest.get("metrics") or {}).get("last_loss")
        print(f"{'*' if row.current else ' '} {row.line}/{row.version}  {row.manifest.get('created_at', '')}"
              f"  last loss {loss if loss is not None else '-'}  {row.path}")
    return 0


def cmd_train_tgi_env(args: argparse.Namespace, settings: Settings) -> int:
    print(f"LORA_ADAPTERS={_registry(settings).tgi_lora_adapters_value()}")
    return 0


def cmd_train_opt_out(args: argparse.Namespace, settings: Settings) -> int:
    from api.cli_admin import _engine
    from core.db.engine import open_session
    from core.db.queries.training import set_training_opt_out

    tenant = _tenant(args, settings)
    with open_session(_engine(settings)) as session:
        set_training_opt_out(session, tenant_id=tenant, user_id=args.user_id, opted_out=not args.undo)
    print(f"{tenant}/{args.user_id}: " + ("may be used for training again" if args.undo else "left out of training"))
    return 0


def _add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    """``--primary``, ``--margin``, ``--tolerance``, ``--min-examples``: the fields of ``GateConfig``,
    with its defaults and help."""
    from dataclasses import MISSING, fields

    from training.evaluate import METRICS, GateConfig

    for gate_field in fields(GateConfig):
        default = gate_field.default if gate_field.default is not MISSING else None
        parser.add_argument(f"--{gate_field.name.replace('_', '-')}", default=default, help=gate_field.metadata["help"],
                            **({"choices": METRICS} if gate_field.name == "primary" else {"type": type(default)}))


def add_training_commands(commands: Any) -> None:
    train = commands.add_parser("train", help="training data, LoRA fine-tuning, evaluation gate, adapter registry")
    actions = train.add_subparsers(dest="action", required=True)

    dataset = actions.add_parser("dataset", help="build a redacted, split training set from logged conversations")
    dataset.add_argument("--since", help="only turns at or after this ISO date/time (UTC if no zone)")
    dataset.add_argument("--tenant", help="default: settings.default_tenant")
    dataset.add_argument("--out", help="parent directory of the dataset (default: data_dir/datasets)")
    dataset.add_argument("--seed", type=int, default=0)
    dataset.add_argument("--validation-fraction", type=float, default=0.1)
    dataset.add_argument("--test-fraction", type=float, default=0.1)
    dataset.add_argument("--json", action="store_true")
    dataset.set_defaults(handler=cmd_train_dataset)

    lora = actions.add_parser("lora", help="fine-tune with LoRA (or --full) and register the adapter")
    lora.add_argument("--base", help="base model directory (default: generator.local.model_dir or the SmolLM2 cache)")
    lora.add_argument("--dataset", help="dataset directory (default: the newest under data_dir/datasets)")
    lora.add_argument("--config", type=Path, help="YAML file of TrainingConfig fields")
    lora.add_argument("--full", action="store_true", help="full fine-tuning (small models; not registered)")
    lora.add_argument("--output", help="output directory (default: data_dir/runs/..., registered in --line)")
    lora.add_argument("--max-steps", type=int, default=None)
    lora.add_argument("--line", default="default", help="registry line (tenant or product line)")
    lora.add_argument("--json", action="store_true")
    lora.set_defaults(handler=cmd_train_lora)

    evaluate = actions.add_parser("evaluate", help="candidate vs current vs base on the held-out split and the "
                                                   "golden set; gate")
    evaluate.add_argument("--candidate", required=True, help="adapter directory to judge")
    evaluate.add_argument("--dataset", help="dataset directory (default: the one the candidate was trained on)")
    evaluate.add_argument("--line", default="default")
    evaluate.add_argument("--limit", type=int, default=None,
                          help="only the first N held-out examples (the golden set is always used whole)")
    _add_gate_arguments(evaluate)
    evaluate.add_argument("--promote", action="store_true", help="register and promote when the gate passes")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=cmd_train_evaluate)

    promote = actions.add_parser("promote", help="make a registered version the line's current adapter")
    promote.add_argument("version")
    promote.add_argument("--line", default="default")
    promote.set_defaults(handler=cmd_train_promote)

    rollback = actions.add_parser("rollback", help="return the line to the previously promoted version")
    rollback.add_argument("--line", default="default")
    rollback.set_defaults(handler=cmd_train_rollback)

    listing = actions.add_parser("list", help="registered adapters (* marks current)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_train_list)

    actions.add_parser("tgi-env", help="print LORA_ADAPTERS for TGI from the current adapters").set_defaults(
        handler=cmd_train_tgi_env)

    opt_out = actions.add_parser("opt-out", help="leave a user's conversations out of training data")
    opt_out.add_argument("user_id")
    opt_out.add_argument("--tenant")
    opt_out.add_argument("--undo", action="store_true")
    opt_out.set_defaults(handler=cmd_train_opt_out)
