"""``supportbot eval strategies``: prompt-only, RAG, LoRA and LoRA + RAG on one held-out split."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from api.cli_arguments import fraction, positive_int
from core.settings import Settings

COLUMNS = ("rouge_l", "bleu", "token_f1", "citation_precision", "p50_ms", "trainable_params", "train_seconds",
           "peak_memory_mb")


def cmd_eval_strategies(args: argparse.Namespace, settings: Settings) -> int:
    from api.strategy_comparison import StrategyOptions, compare_strategies
    from knowledge.evaluation.dataset import load_dataset

    options = StrategyOptions(train_fraction=args.train_fraction, seed=args.seed, train_questions=args.train_questions,
                              test_questions=args.test_questions, context_words=args.context_words,
                              max_new_tokens=args.max_new_tokens, epochs=args.epochs, max_steps=args.max_steps,
                              threads=args.threads)
    dataset = load_dataset(args.dataset)
    with contextlib.ExitStack() as stack:
        work_dir = Path(args.work_dir) if args.work_dir else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="strategies-", dir=_scratch(settings))))
        if args.json:  # stdout carries exactly one JSON object; anything a library prints goes to stderr
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        result = compare_strategies(settings, dataset, options, work_dir, progress_bar=True)  # on stderr
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    print(f"{result['dataset']}: {result['n_train']} training, {result['n_test']} held-out questions; "
          f"{result['seconds']:.0f} s")
    print(f"{'strategy':12}" + "".join(f"{c[:14]:>15}" for c in COLUMNS))
    for name, metrics in result["results"].items():
        print(f"{name:12}" + "".join(_cell(metrics[c]) for c in COLUMNS))
    return 0


def _scratch(settings: Settings) -> Path:
    path = settings.data_dir / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cell(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:>15,}"
    return f"{value:15.3f}" if value is not None else f"{'n.a.':>15}"


def add_strategy_commands(eval_kinds: Any) -> None:
    strategies = eval_kinds.add_parser(
        "strategies", help="prompt-only, RAG, LoRA and LoRA+RAG on one held-out split: accuracy and cost")
    strategies.add_argument("--dataset", required=True, type=Path)
    strategies.add_argument("--train-fraction", type=fraction, default=0.7,
                            help="share of the questions (whole groups) used for training")
    strategies.add_argument("--seed", type=int, default=0, help="seed of the split and of the training")
    strategies.add_argument("--train-questions", type=positive_int, default=None,
                            help="train on at most N answerable questions of the training side")
    strategies.add_argument("--test-questions", type=positive_int, default=30,
                            help="score at most N answerable questions of the held-out side (default 30: each is "
                                 "answered four times, about 30 s on two cores)")
    strategies.add_argument("--context-words", type=positive_int, default=60,
                            help="words of the gold passage kept around the answer in each training example")
    strategies.add_argument("--max-new-tokens", type=positive_int, default=64, help="answer length limit")
    strategies.add_argument("--epochs", type=float, default=1.0, help="passes over the training examples")
    strategies.add_argument("--max-steps", type=int, default=-1, help="stop training after N steps (-1: epochs)")
    strategies.add_argument("--threads", type=int, default=0,
                            help="torch threads for training and answering (0: settings.generator.local.threads)")
    strategies.add_argument("--work-dir", type=Path, default=None,
                            help="keep the training examples and the adapter here (default: a temporary directory)")
    strategies.add_argument("--json", action="store_true", help="print the report as one JSON object")
    strategies.set_defaults(handler=cmd_eval_strategies)
