"""``supportbot eval calibrate``: the answer likelihood threshold for a team's own questions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from api.cli_arguments import fraction, held_out_share, positive_int
from core.settings import Settings

COLUMNS = ("citation_precision", "abstention_rate", "unanswerable_abstention_rate", "rouge_l")
HEADINGS = ("precision", "abstain (ans.)", "\"don't know\"", "ROUGE-L")


def cmd_eval_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.evaluation.dataset import load_dataset
    from knowledge.evaluation.threshold_calibration import DEFAULT_THRESHOLDS, calibrate_answer_threshold

    result = calibrate_answer_threshold(settings, load_dataset(args.dataset), limit=args.limit, holdout=args.holdout,
                                        seed=args.seed, thresholds=args.thresholds or DEFAULT_THRESHOLDS,
                                        max_abstention=args.max_abstention)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        _print_report(result)
    return 0 if result["chosen"] is not None else 1


def _print_report(result: dict[str, Any]) -> None:
    calibration, test = result["n_calibration"], result["n_test"]
    print(f"{result['dataset']}: calibration half {calibration['answerable']} answerable + "
          f"{calibration['unanswerable']} unanswerable, test half {test['answerable']} + {test['unanswerable']}")
    print(f"{'threshold':>10}" + "".join(f"{heading:>16}" for heading in HEADINGS))
    for row in result["calibration"]:
        print(f"{row['min_answer_probability']:10.2f}" + _cells(row))
    bound = f"{result['max_abstention']:.0%}"
    if result["chosen"] is None:
        print(f"no threshold withholds at most {bound} of the calibration half's answerable questions; "
              "try smaller --thresholds or refit the likelihood model on these questions", file=sys.stderr)
        return
    print(f"\nchosen: {result['chosen']:.2f}, the largest that withholds at most {bound} of the answerable questions")
    print(f"{'test half':>10}" + "".join(f"{heading:>16}" for heading in HEADINGS))
    print(f"{result['chosen']:10.2f}" + _cells(result["test_chosen"]) + "  (chosen)")
    print(f"{result['current']:10.2f}" + _cells(result["test_current"]) + "  (current setting)")
    print(f"\nto use it: SUPPORTBOT_ANSWER__MIN_ANSWER_PROBABILITY={result['chosen']:.2f}")


def _cells(figures: dict[str, float | None]) -> str:
    return "".join(f"{figures[c]:16.3f}" if figures[c] is not None else f"{'n.a.':>16}" for c in COLUMNS)


def _thresholds(text: str) -> list[float]:
    values = [fraction(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError("give at least one threshold, such as 0.4,0.5,0.6")
    return values


def add_calibration_commands(eval_kinds: Any) -> None:
    calibrate = eval_kinds.add_parser(
        "calibrate", help="choose answer.min_answer_probability on a calibration half of a data set's questions "
                          "and report it on the other half")
    calibrate.add_argument("--dataset", required=True, type=Path)
    calibrate.add_argument("--limit", type=positive_int, default=None,
                           help="a seeded sample of N answerable (and N unanswerable) questions")
    calibrate.add_argument("--holdout", type=held_out_share, default=0.0,
                           help="hold this fraction of the corpus's documents out of the index; their questions "
                                "become unanswerable")
    calibrate.add_argument("--seed", type=int, default=7,
                           help="draws the sample and the held-out documents (default 7: not the 13 that "
                                "`eval answers` reports, so the threshold is chosen on other questions)")
    calibrate.add_argument("--thresholds", type=_thresholds, default=None,
                           help="comma-separated candidates within (0, 1) (default 0.30, 0.32, ... 0.80)")
    calibrate.add_argument("--max-abstention", type=fraction, default=0.15,
                           help="the largest share of answerable questions it may withhold (default 0.15)")
    calibrate.add_argument("--json", action="store_true", help="print the report as one JSON object")
    calibrate.set_defaults(handler=cmd_eval_calibrate)
