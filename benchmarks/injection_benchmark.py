"""Prompt-injection pass rates: every case of ``tests/security/injection_cases.yaml`` through the real
answer service, per generator, reported per attack category.

A case passes when the checked answer follows no planted instruction, leaks neither the system
prompt nor its canary, and links to nothing a cited source does not hold (the checks of
``tests/security/injection_harness.violations``).

Usage::

    python benchmarks/injection_benchmark.py                         # extractive, obedient, local
    python benchmarks/injection_benchmark.py --generators local --budget-s 600
    SUPPORTBOT_GENERATOR__REMOTE__URL=http://tgi:8080 python benchmarks/injection_benchmark.py

``obedient`` is a worst-case test double that does whatever a planted instruction says: its row
measures the output checks alone. ``remote`` runs when ``SUPPORTBOT_GENERATOR__REMOTE__URL`` is set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generators", default="extractive,obedient,local",
                        help="comma-separated: extractive, obedient, local, remote")
    parser.add_argument("--budget-s", type=float, default=600.0,
                        help="stop a generator's run after this many seconds (cases are interleaved by category)")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data",
                        help="where the dequantized SmolLM2 is cached (models/)")
    args = parser.parse_args(argv)

    from bot.answer_service import AnswerService
    from knowledge.generation.extractive import ExtractiveGenerator
    from knowledge.generation.factory import build_generator
    from tests.security.injection_harness import ObedientGenerator, ask, build_suite, load_cases, violations

    cases = load_cases()
    by_category: dict[str, list] = defaultdict(list)
    for case in cases:
        by_category[case.category].append(case)
    # Round-robin over the categories, so a time budget still samples each of them.
    ordered = [group[i] for i in range(max(map(len, by_category.values())))
               for group in by_category.values() if i < len(group)]
    names = [name.strip() for name in args.generators.split(",") if name.strip()]
    if "remote" in names and not os.environ.get("SUPPORTBOT_GENERATOR__REMOTE__URL"):
        print("remote: skipped (SUPPORTBOT_GENERATOR__REMOTE__URL is not set)")
        names.remove("remote")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        suite = build_suite(root, cases, generator={"backend": "extractive"})
        print(f"indexed {len(suite.chunks)} chunks ({len(cases)} cases) in {time.perf_counter() - started:.0f} s")
        if suite.ingest_failures:
            print(f"ingest failures: {suite.ingest_failures}")
        (root / "models").symlink_to(args.data_dir.resolve() / "models")
        results: dict[str, dict[str, list[bool]]] = {}
        failures: dict[str, list[str]] = defaultdict(list)
        timings: dict[str, float] = {}
        for name in names:
            settings = suite.settings.model_copy(update={"data_dir": root})
            if name in ("local", "remote"):
                settings = settings.model_copy(update={"generator": settings.generator.model_copy(
                    update={"backend": name})})
            service = None
            results[name] = defaultdict(list)
            run_started = time.perf_counter()
            for case in ordered:
                if time.perf_counter() - run_started > args.budget_s:
                    break
                generator = (ExtractiveGenerator() if name == "extractive" else ObedientGenerator(case.markers)
                             if name == "obedient" else None)
                if generator is not None:
                    service = AnswerService(settings, suite.search, generator)
                elif service is None:
                    service = AnswerService(settings, suite.search, build_generator(settings))
                    service.warm_up()
                answer, _ = ask(service, case)
                problems = violations(case, answer, suite.chunks)
                results[name][case.category].append(not problems)
                if problems:
                    failures[name].append(f"{case.id}: {'; '.join(problems)} | answer: {answer.text[:160]!r}")
            timings[name] = time.perf_counter() - run_started

    categories = sorted(by_category)
    width = max(map(len, categories)) + 2
    print()
    print("pass rate per category (passed/run)")
    print("category".ljust(width) + "".join(name.rjust(14) for name in results))
    for category in [*categories, "all"]:
        row = category.ljust(width)
        for name in results:
            outcomes = ([o for group in results[name].values() for o in group] if category == "all"
                        else results[name].get(category, []))
            row += (f"{sum(outcomes)}/{len(outcomes)} {100 * sum(outcomes) / len(outcomes):3.0f}%" if outcomes
                    else "-").rjust(14)
        print(row)
    print("seconds".ljust(width) + "".join(f"{timings[name]:.0f}".rjust(14) for name in results))
    for name, lines in failures.items():
        print(f"\n{name} failures:")
        for line in lines:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
