"""``supportbot ask`` and ``supportbot eval answers``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from api.cli_arguments import held_out_share, positive_int
from core.settings import Settings

if TYPE_CHECKING:
    from bot.answer_service import AnswerService

GENERATORS = ("local", "remote", "extractive")


def _answer_service(settings: Settings, generator: str | None) -> AnswerService:
    from bot.answer_service import build_answer_service
    from knowledge.generation.factory import GeneratorName

    return build_answer_service(settings, generator=cast(GeneratorName | None, generator))


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.retrieval import metadata_filters

    service = _answer_service(settings, args.generator)
    service.validate(args.question)
    service.warm_up()
    filters = metadata_filters(tenant=args.tenant or settings.default_tenant, product=args.product, version=args.version)
    answer = None
    for event in service.stream(args.question, history=[], filters=filters):
        if event.kind == "token" and args.stream and not args.json:
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif event.kind == "answer":
            answer = event.answer
    assert answer is not None
    if args.json:
        sys.stdout.write(answer.model_dump_json() + "\n")
        return 0
    if args.stream:
        print("\n---")
    print(answer.text)
    for citation in answer.citations:
        where = " > ".join(citation.heading_path) or citation.title
        page = f", page {citation.page}" if citation.page else ""
        print(f"  [{citation.number}] {citation.title} | {where}{page} | {citation.url or citation.source or ''}")
        print(f"      \"{citation.snippet}\"")
    status = "abstained (" + str(answer.handoff_reason) + ")" if answer.abstained else (
        "grounded" if answer.grounded else "not grounded")
    fallback = f"; fallback: {answer.fallback_reason}" if answer.fallback_reason else ""
    print(f"({answer.generator}; {status}{fallback}; {answer.timings.total_ms:.0f} ms)", file=sys.stderr)
    return 0


def cmd_eval_answers(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.evaluation.answer_eval import evaluate_answers
    from knowledge.evaluation.dataset import load_dataset
    from knowledge.generation.factory import build_generator

    generators = args.generator or ["extractive", "local"]
    runs: dict[str, Any] = {}
    for name in generators:
        if name == "extractive":
            runs["extractive"] = lambda: build_generator(settings, "extractive")
        elif name == "local":
            runs["local-rag"] = lambda: build_generator(settings, "local")
            if not args.no_prompt_only:
                runs["local-prompt-only"] = lambda: build_generator(settings, "local")
        else:
            runs["remote-rag"] = lambda: build_generator(settings, "remote")
    result = evaluate_answers(settings, load_dataset(args.dataset), runs, limit=args.limit, holdout=args.holdout)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    print(f"{result['dataset']}: {result['n_answerable']} answerable, {result['n_unanswerable']} unanswerable")
    columns = ("rouge_l", "bleu", "token_f1", "citation_precision", "grounded_rate", "abstention_rate",
               "unanswerable_abstention_rate", "p50_ms", "p95_ms")
    print(f"{'run':18}" + "".join(f"{c[:12]:>13}" for c in columns))
    for name, metrics in result["results"].items():
        cells = "".join(f"{(metrics[c] if metrics[c] is not None else float('nan')):13.3f}" for c in columns)
        print(f"{name:18}{cells}")
    return 0


def add_answer_commands(commands: Any, eval_kinds: Any) -> None:
    ask = commands.add_parser("ask", help="answer a question from the indexed manuals, with citations")
    ask.add_argument("question")
    ask.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    ask.add_argument("--generator", choices=GENERATORS, default=None, help="default: settings.generator.backend")
    ask.add_argument("--tenant")
    ask.add_argument("--product")
    ask.add_argument("--version")
    ask.add_argument("--json", action="store_true", help="print the Answer as one JSON object")
    ask.set_defaults(handler=cmd_ask)

    answers = eval_kinds.add_parser("answers", help="answer quality, citations and abstention per generator")
    answers.add_argument("--dataset", required=True, type=Path)
    answers.add_argument("--limit", type=positive_int, default=None, help="a seeded sample of N answerable (and N unanswerable) questions")
    answers.add_argument("--generator", action="append", choices=GENERATORS,
                         help="repeatable; default: extractive and local (local also runs prompt-only)")
    answers.add_argument("--holdout", type=held_out_share, default=0.0,
                         help="hold this fraction of the corpus's documents out of the index; their questions become unanswerable")
    answers.add_argument("--no-prompt-only", action="store_true", help="skip the local model without retrieval")
    answers.add_argument("--json", action="store_true")
    answers.set_defaults(handler=cmd_eval_answers)
