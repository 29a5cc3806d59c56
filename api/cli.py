"""``supportbot``: the entry point of every process.

Each sub-command is a thin function: parse, call the library, print. Errors we raise on purpose
(:class:`core.errors.SupportbotError`) are printed as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from api.cli_actions import add_actions_commands
from api.cli_admin import add_admin_commands
from api.cli_answers import add_answer_commands
from api.cli_calibration import add_calibration_commands
from api.cli_strategies import add_strategy_commands
from api.cli_training import add_training_commands
from api.cli_worker import add_worker_commands
from core.errors import SupportbotError
from core.settings import Settings, describe_validation_error, get_settings


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=None, default=str) + "\n")


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(settings.masked()) if args.json else print(json.dumps(settings.masked(), indent=2, default=str))
    return 0


def _default_tenant(args: argparse.Namespace, settings: Settings) -> str:
    return str(args.tenant or settings.default_tenant)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.document_store import build_document_store
    from knowledge.indexing import Indexer, SourceMeta

    store = build_document_store(settings)
    indexer = Indexer(settings, store, progress_bar=(not args.json and sys.stderr.isatty()) or args.progress)
    labels = SourceMeta(tenant=_default_tenant(args, settings), product=args.product, version=args.version)
    summary = indexer.ingest(list(args.targets), labels, prune=args.prune)
    tenant_created = _record_ingested_sources(settings, store, labels.tenant)
    if args.json:
        _print_json(summary.as_dict())
    else:
        for source, reason in summary.failed:
            print(f"FAILED  {source}: {reason}", file=sys.stderr)
        for source, reason in summary.warnings:
            print(f"WARNING {source}: {reason}", file=sys.stderr)
        for source, twin in summary.duplicates:
            print(f"SKIPPED {source}: same content as {twin}", file=sys.stderr)
        print(f"files: {summary.new} new, {summary.changed} changed, {summary.unchanged} unchanged, "
              f"{len(summary.duplicates)} duplicate, {len(summary.failed)} failed"
              + (f", {len(summary.skipped_unsupported)} skipped (unsupported type)" if summary.skipped_unsupported else "")
              + (f", {len(summary.pruned_sources)} pruned" if summary.pruned_sources else ""))
        print(f"chunks: {summary.chunks_written} written, {summary.chunks_deleted} deleted; {summary.seconds:.1f} s")
        if tenant_created:
            print(f"tenant {labels.tenant!r} created (its documents are listed by GET /v1/documents)")
    written = summary.new + summary.changed + summary.unchanged + len(summary.duplicates)
    return 1 if summary.failed and not written else 0


def _record_ingested_sources(settings: Settings, store: Any, tenant_id: str) -> bool:
    """List what the store holds for the tenant in ``document_source``, as uploads are, creating the
    tenant's record if there is none yet. :returns: whether the tenant was created."""
    from api.document_library import record_indexed_sources
    from core.db.engine import build_engine, open_session
    from core.db.migrate import upgrade
    from core.db.queries import tenants

    engine = build_engine(settings)
    try:
        upgrade(engine)
        with open_session(engine) as session:
            created = tenants.get_tenant(session, tenant_id=tenant_id) is None
            if created:
                tenants.create_tenant(session, tenant_id=tenant_id)
        record_indexed_sources(engine, store, tenant_id=tenant_id)
    finally:
        engine.dispose()
    return created


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.document_store import build_document_store
    from knowledge.retrieval import KnowledgeSearch, metadata_filters

    search = KnowledgeSearch(settings, build_document_store(settings), mode=args.mode)
    filters = metadata_filters(tenant=_default_tenant(args, settings), product=args.product, version=args.version)
    search.validate(args.query, args.top_k)
    search.warm_up()
    chunks = search.search(args.query, top_k=args.top_k, filters=filters)
    if args.json:
        _print_json([{"id": c.id, "score": c.score, "content": c.content, **{
            k: c.meta.get(k) for k in ("title", "heading_path", "page", "source", "url", "product", "version")}}
            for c in chunks])
        return 0
    if not chunks:
        print("no results")
    for rank, chunk in enumerate(chunks, start=1):
        meta = chunk.meta
        where = " > ".join(meta.get("heading_path") or [meta.get("title", "")])
        page = f", page {meta['page']}" if meta.get("page") else ""
        print(f"{rank}. [{chunk.score:.3f}] {meta.get('title', '')} | {where}{page}")
        print(f"   {meta.get('source', '')}")
        snippet = " ".join((chunk.content or "").split())
        print(f"   {snippet[:240]}{'…' if len(snippet) > 240 else ''}")
    return 0


def cmd_eval_retrieval(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.evaluation.dataset import load_dataset
    from knowledge.evaluation.retrieval_eval import evaluate_retrieval

    dataset = load_dataset(args.dataset)
    result = evaluate_retrieval(settings, dataset, limit=args.limit, progress_bar=True)
    if args.json:
        _print_json(result)
        return 0
    print(f"{result['dataset']}: {result['n_questions']} questions")
    print(f"{'mode':8} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7} {'nDCG@10':>8} {'p50 ms':>7} {'p95 ms':>7}")
    for mode in ("bm25", "dense", "hybrid"):
        m = result[mode]
        print(f"{mode:8} {m['recall@1']:6.3f} {m['recall@5']:6.3f} {m['recall@10']:6.3f} {m['mrr@10']:7.3f} "
              f"{m['ndcg@10']:8.3f} {m['p50_ms']:7.1f} {m['p95_ms']:7.1f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supportbot", description="Self-hostable support chat backend.")
    commands = parser.add_subparsers(dest="command", required=True)

    config = commands.add_parser("config", help="print the effective settings (secrets masked)")
    config.add_argument("--json", action="store_true")
    config.set_defaults(handler=cmd_config)

    def add_labels(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--tenant", help="tenant id (default: settings.default_tenant)")
        sub.add_argument("--product")
        sub.add_argument("--version")

    ingest = commands.add_parser("ingest", help="index files, folders or URLs (incremental)")
    ingest.add_argument("targets", nargs="+", metavar="PATH_OR_URL")
    add_labels(ingest)
    ingest.add_argument("--prune", action="store_true", help="delete chunks of files that are gone")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")
    ingest.add_argument("--progress", action="store_true", help="show a progress bar even when not a terminal")
    ingest.set_defaults(handler=cmd_ingest)

    search = commands.add_parser("search", help="hybrid retrieval over the indexed manuals")
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=None)
    search.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default="hybrid")
    add_labels(search)
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=cmd_search)

    evaluate = commands.add_parser("eval", help="evaluate on a data set")
    eval_kinds = evaluate.add_subparsers(dest="kind", required=True)
    retrieval = eval_kinds.add_parser("retrieval", help="bm25, dense and hybrid retrieval side by side")
    retrieval.add_argument("--dataset", required=True, type=Path)
    retrieval.add_argument("--limit", type=int, default=None, help="score a seeded sample of N questions")
    retrieval.add_argument("--json", action="store_true")
    retrieval.set_defaults(handler=cmd_eval_retrieval)
    add_answer_commands(commands, eval_kinds)
    add_calibration_commands(eval_kinds)
    add_strategy_commands(eval_kinds)
    add_admin_commands(commands)
    add_actions_commands(commands)
    add_training_commands(commands)
    add_worker_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # self-hosted: no usage data leaves the machine
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, get_settings()))
    except SupportbotError as exc:
        print(f"supportbot {args.command}: error: {exc.message}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # pydantic validation of settings: name each key as a config writes it
        print(f"supportbot {args.command}: invalid settings: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"supportbot {args.command}: invalid settings or arguments: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
