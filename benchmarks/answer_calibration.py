"""Choose answer thresholds on one half of a data set's questions and report them on the other.

The extractive generator answers the calibration half and the test half
(:mod:`knowledge.evaluation.calibration`: split by paraphrase group) over the same retrieved chunks
for every combination of the ``--grid`` values; the data set is indexed and each question retrieved
once. Pick a combination by its calibration figures, then quote its test figures (for the likelihood
threshold alone, ``supportbot eval calibrate`` does this and picks it)::

    python benchmarks/answer_calibration.py --dataset tests/data/manuals-eval \\
        --grid min_answer_confidence=1.3,1.4,1.5 --grid max_unmatched_focus=0.2,0.22,0.24
    python benchmarks/answer_calibration.py --dataset ../shared/datasets/squad-dev --limit 400 \\
        --holdout 0.2 --seed 7 --grid min_answer_confidence=1.4,1.5

``--seed`` also draws the ``--limit`` sample and the held-out documents: with squad-dev, use a seed
other than the evaluation's default (13) to calibrate on questions the reported run does not ask.
"""

from __future__ import annotations

import argparse
import itertools
import json

from core.settings import Settings
from knowledge.evaluation.dataset import load_dataset
from knowledge.evaluation.threshold_calibration import recorded_halves, score_extractive, with_answer_settings


def grid_points(grid: list[str]) -> list[dict[str, float | int]]:
    """``["a=1,2", "b=3"]`` -> ``[{"a": 1, "b": 3}, {"a": 2, "b": 3}]``."""
    axes = []
    for item in grid:
        name, _, values = item.partition("=")
        axes.append([(name.strip(), _number(value.strip())) for value in values.split(",") if value.strip()])
    return [dict(point) for point in itertools.product(*axes)]


def _number(text: str) -> float | int:
    """``"4"`` -> 4 (counts such as ``sources`` must stay integers), ``"1.5"`` -> 1.5."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--holdout", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--grid", action="append", default=[], help="answer setting=v1,v2,... (repeatable)")
    args = parser.parse_args()
    base = Settings()
    run = recorded_halves(base, load_dataset(args.dataset), limit=args.limit, holdout=args.holdout, seed=args.seed,
                          progress_bar=False)
    for point in grid_points(args.grid) or [{}]:
        settings = with_answer_settings(base, point)
        print(
            json.dumps(
                {
                    "settings": point,
                    "calibration": score_extractive(settings, run.search, run.calibration, run.doc_ids),
                    "test": score_extractive(settings, run.search, run.test, run.doc_ids),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
